"""The committed real data is what its README says it is."""

from __future__ import annotations

import hashlib
import re

import pandas as pd
import pytest

from tests.helpers.runs import FIXTURES

TABLE_ROW = re.compile(r"^\| (\S+\.csv) \| (\d+) \| (\S+) \.\. (\S+) \| `([0-9a-f]{64})` \|$")


def described() -> list[tuple[str, int, str, str, str]]:
    rows = [TABLE_ROW.match(line) for line in (FIXTURES / "README.md").read_text().splitlines()]
    return [(m[1], int(m[2]), m[3], m[4], m[5]) for m in rows if m]


def test_every_fixture_is_described():
    assert {name for name, *_ in described()} == {p.name for p in FIXTURES.glob("*.csv")}


@pytest.mark.parametrize(("name", "rows", "first", "last", "sha256"), described())
def test_fixture_matches_its_provenance(name, rows, first, last, sha256):
    path = FIXTURES / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    frame = pd.read_csv(path)
    assert (len(frame), frame["Date"].iloc[0], frame["Date"].iloc[-1]) == (rows, first, last)
