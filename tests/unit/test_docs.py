"""The documentation says what the code does: every parameter in docs/entry-points.md as MLproject declares it."""

from __future__ import annotations

import re

import pytest

from psystock.entry_points import PROJECT_ROOT, load_entry_points

ENTRY_POINTS_DOC = PROJECT_ROOT / "docs" / "entry-points.md"


def documented_parameters() -> dict[str, dict[str, tuple[str, str]]]:
    """entry point -> parameter -> (type, default) from the doc's tables.

    A table belongs to every entry point named in the nearest heading above it.
    """
    found: dict[str, dict[str, tuple[str, str]]] = {}
    owners: list[str] = []
    for line in ENTRY_POINTS_DOC.read_text().splitlines():
        if line.startswith("#"):
            owners = re.findall(r"`(\w+)`", line)
        row = re.match(r"^\| `(\w+)` \| (\w+) \| ([^|]*) \|", line)
        if row:
            for owner in owners:
                found.setdefault(owner, {})[row.group(1)] = (row.group(2), row.group(3).strip())
    return found


def rendered_default(spec: dict) -> str:
    if "default" not in spec:
        return "required"
    default = spec["default"]
    return '""' if default == "" else str(default)


DOCUMENTED = documented_parameters()


@pytest.mark.parametrize("entry_point", sorted(load_entry_points()))
def test_every_parameter_is_documented_with_its_type_and_default(entry_point):
    declared = load_entry_points()[entry_point]["parameters"]
    expected = {name: (spec.get("type", "string"), rendered_default(spec)) for name, spec in declared.items()}
    assert DOCUMENTED.get(entry_point) == expected


def test_the_doc_names_no_entry_point_mlproject_lacks():
    assert set(DOCUMENTED) == set(load_entry_points())
