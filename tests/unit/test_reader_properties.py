"""Property: whatever a price file holds, reading it gives validated bars or one readable line.

Hypothesis breaks a real file (cells replaced by junk, rows ragged, shuffled, duplicated or
cut short, headers renamed, yfinance's header rows with any ticker, bytes that are no text)
thousands of times; every outcome must be a :class:`PsystockError` of one line or bars that
hold every invariant -- never another exception.
"""

from __future__ import annotations

import gc
from datetime import date

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from psystock import PsystockError
from psystock.data import COLUMNS, load_prices
from psystock.mlflow_io.lifecycle import run_step
from steps import fetch_data
from tests.helpers.runs import FIXTURES, tracking_uri

ROWS = [line.split(",") for line in (FIXTURES / "SPY.csv").read_text().splitlines()[:41]]
START, END = date(2005, 1, 1), date(2012, 8, 31)
JUNK = [
    "",
    " ",
    "null",
    "NaN",
    "nan",
    "None",
    "-1",
    "0",
    "1e999",
    "-inf",
    "abc",
    '"',
    "2005-13-45",
    "2005-01-03",
    "Date",
    "Close",
    "1,5",
    "\t",
    "\r",
    "9" * 40,
    "0x1F",
    "\uff11\uff12\uff13",
]  # the last: full-width digits
CELL = st.one_of(st.sampled_from(JUNK), st.text(max_size=12))


@st.composite
def broken_file(draw) -> bytes:
    rows = [list(row) for row in ROWS]
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(
            st.sampled_from(
                [
                    "cell",
                    "cell",
                    "ragged",
                    "extra",
                    "header",
                    "duplicate",
                    "swap",
                    "reverse",
                    "cut",
                    "line",
                    "yfinance",
                    "null-rows",
                    "drop-column",
                ]
            )
        )
        i = draw(st.integers(0, len(rows) - 1)) if rows else 0
        if not rows:
            break
        if kind == "cell" and rows[i]:
            rows[i][draw(st.integers(0, len(rows[i]) - 1))] = draw(CELL)
        elif kind == "ragged" and rows[i]:
            rows[i].pop(draw(st.integers(0, len(rows[i]) - 1)))
        elif kind == "extra":
            rows[i].append(draw(CELL))
        elif kind == "header" and rows[0]:
            rows[0][draw(st.integers(0, len(rows[0]) - 1))] = draw(CELL)
        elif kind == "duplicate":
            rows.insert(i, list(rows[i]))
        elif kind == "swap":
            j = draw(st.integers(0, len(rows) - 1))
            rows[i], rows[j] = rows[j], rows[i]
        elif kind == "reverse":
            rows[1:] = rows[1:][::-1]
        elif kind == "cut":
            rows = rows[: draw(st.integers(0, len(rows)))]
        elif kind == "line":
            rows.insert(i, draw(st.text(max_size=40)).split(","))
        elif kind == "yfinance" and rows[0]:
            names = ["Price", *sorted(rows[0][1:])]
            rows = [
                names,
                ["Ticker", *[draw(st.sampled_from(["SPY", "GLD", ""]))] * (len(names) - 1)],
                ["Date", *[""] * (len(names) - 1)],
                *rows[1:],
            ]
        elif kind == "null-rows":
            for k in range(i, min(len(rows), i + draw(st.integers(1, 40)))):
                if k:
                    rows[k] = [rows[k][0], *["null"] * (len(rows[k]) - 1)] if rows[k] else rows[k]
        elif kind == "drop-column" and rows[0]:
            j = draw(st.integers(0, len(rows[0]) - 1))
            rows = [[c for n, c in enumerate(row) if n != j] for row in rows]
    text: str = "\n".join(",".join(row) for row in rows) + draw(st.sampled_from(["\n", "", "\n\n"]))
    encoding: str = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    return text.encode(encoding, errors="replace")


def check_outcome(path) -> None:
    try:
        prices = load_prices(str(path), "SPY", START, END, 15)
    except PsystockError as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message and "\r" not in message, repr(message)
        return
    frame = prices.frame
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) >= 15 and frame["Date"].is_monotonic_increasing and frame["Date"].is_unique
    values = frame[list(COLUMNS[1:])].to_numpy(dtype=float)
    assert np.isfinite(values).all() and (values[:, :5] > 0).all() and (values[:, 5] >= 0).all()


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=broken_file())
def test_any_file_reads_as_bars_or_fails_in_one_line(tmp_path_factory, content):
    path = tmp_path_factory.getbasetemp() / "prices.csv"
    path.write_bytes(content)
    check_outcome(path)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_bytes_at_all_read_as_bars_or_fail_in_one_line(tmp_path_factory, content):
    path = tmp_path_factory.getbasetemp() / "noise.csv"
    path.write_bytes(content)
    check_outcome(path)


@pytest.mark.integration
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=broken_file())
def test_the_fetch_step_never_finishes_on_a_file_it_refuses(tmp_path_factory, tracking, content):
    """The whole step in this process, as ``mlflow run`` starts it: a refused file ends with exit
    status 2 and a FAILED run holding no prices; an accepted one FINISHES with its prices."""
    import mlflow

    path = tmp_path_factory.getbasetemp() / "step.csv"
    path.write_bytes(content)
    argv = ["--ticker", "SPY", "--start", "2005-01-01", "--end", "2012-08-31", "--source", str(path)]
    code: int | str | None = 0
    try:
        run_step(fetch_data.Args, fetch_data.fetch, argv=argv)
    except SystemExit as exit_:
        code = exit_.code
    finally:
        gc.unfreeze()
    run = mlflow.MlflowClient().search_runs([tracking], order_by=["attributes.start_time DESC"], max_results=1)[0]
    files = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "prices")}
    if code == 0:
        assert run.info.status == "FINISHED" and "prices/prices.csv" in files
    else:
        assert code == 2 and run.info.status == "FAILED" and not files


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """A SQLite store for this module's in-process runs; the experiment id."""
    import mlflow

    root = tmp_path_factory.mktemp("store")
    with tracking_uri(f"sqlite:///{root}/mlflow.db"):
        experiment = mlflow.create_experiment("reader-properties", artifact_location=str(root / "artifacts"))
        mlflow.set_experiment(experiment_id=experiment)
        yield experiment
