"""`mlflow run . -e universe`: one pipeline per ticker on the real SPY, GLD and IBM bars, a failure
among them, the resume after it, the cache across universes, and tickers refused up front."""

from __future__ import annotations

import html
import io
import json
import shutil

import mlflow
import pandas as pd
import pytest

from psystock import names
from tests.helpers.runs import FIXTURES, ProjectRun, Store, artifacts, finished, mlflow_run, small_pipeline

pytestmark = pytest.mark.integration


# A universe runs whatever families its pipelines train; Keras is judged in the main and step tests.
FAMILIES = ("logreg", "xgboost")


def universe_params(folder, tickers: str) -> dict[str, object]:
    """Short pipelines on the last twenty months of the fixtures, two at a time."""
    return {
        **small_pipeline(folder, start="2011-01-01", end="2012-08-31", max_evals=1, families=",".join(FAMILIES)),
        "tickers": tickers,
        "max_pipelines": 2,
    }


def pipelines(universe_run_id: str) -> dict[str, mlflow.entities.Run]:
    """The universe's child runs, by ticker."""
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{universe_run_id}'",
        search_all_experiments=True,
        output_format="list",
    )
    return {run.data.tags[names.TAG_TICKER]: run for run in children}


def tickers_table(run_id: str) -> pd.DataFrame:
    text = mlflow.artifacts.load_text(names.run_uri(run_id, names.artifact(names.UNIVERSE_DIR, names.UNIVERSE_TICKERS)))
    return pd.read_csv(io.StringIO(text), keep_default_na=False).set_index("ticker")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """SPY and GLD as committed, BAD a file that is not prices, NEW a copy of IBM's bars."""
    root = tmp_path_factory.mktemp("tickers")
    for ticker in ("SPY", "GLD"):
        shutil.copy(FIXTURES / f"{ticker}.csv", root / f"{ticker}.csv")
    (root / "BAD.csv").write_text("Date,Open\n2012-01-03,not a price\n")
    return root


@pytest.fixture(scope="module")
def first(module_store: Store, folder) -> ProjectRun:
    """SPY, GLD and BAD: BAD fails, the others finish."""
    return mlflow_run(module_store, "universe", universe_params(folder, "SPY,GLD,BAD"), timeout=1200)


def test_a_failing_ticker_fails_the_universe_but_not_the_others(first: ProjectRun):
    assert first.returncode != 0
    # BAD's fetch_data and main say why they failed; the universe's line comes last.
    assert first.error_lines()[-1].startswith("universe: error: 1 of 3 pipelines failed: BAD (run "), first.output[
        -3000:
    ]
    universe = mlflow.get_run(first.run_id)
    assert universe.info.status == "FAILED"
    assert universe.data.tags[names.TAG_FAILED_TICKERS] == "BAD"
    runs = pipelines(first.run_id)
    assert {t: r.info.status for t, r in runs.items()} == {"SPY": "FINISHED", "GLD": "FINISHED", "BAD": "FAILED"}
    assert runs["BAD"].data.tags["mlflow.runName"] == "main BAD"
    # max_pipelines=2: the third pipeline started only once one of the first two had ended.
    assert max(r.info.start_time for r in runs.values()) >= min(r.info.end_time for r in runs.values())
    # The report stands, with the failure on its row and the error that caused it.
    assert {"report.html", "report.md", "tickers.csv", "scores.csv", "wins.csv", "heat_map.png"} <= {
        path.rsplit("/", 1)[-1] for path in artifacts(first.run_id, names.UNIVERSE_DIR)
    }
    table = tickers_table(first.run_id)
    assert list(table.index) == ["SPY", "GLD", "BAD"]
    assert list(table["status"]) == ["finished", "finished", "FAILED"]
    assert "fetch_data: price data lacks columns High" in table.at["BAD", "error"]
    for ticker in ("SPY", "GLD"):
        main = runs[ticker]
        assert table.at[ticker, "family"] == main.data.tags[names.TAG_WINNER_FAMILY]
        assert table.at[ticker, "run_id"] == main.info.run_id
        assert main.data.params["source"].endswith(f"{ticker}.csv") and main.data.params["spark_master"] == ""
    # One status line per ticker, as the console shows them.
    for ticker, status in (("SPY", "finished"), ("GLD", "finished"), ("BAD", "FAILED")):
        assert f"  {ticker:<10} {status:<8} run {runs[ticker].info.run_id}" in first.stdout


def test_the_report_says_per_ticker_what_the_pipelines_found(first: ProjectRun):
    table = tickers_table(first.run_id)
    runs = pipelines(first.run_id)
    for ticker in ("SPY", "GLD"):
        steps = json.loads(runs[ticker].data.tags[names.TAG_STEP_RUNS])
        compare = mlflow.get_run(steps["compare"])
        register = mlflow.get_run(steps["register"])
        assert table.at[ticker, "best baseline"] == compare.data.tags[names.TAG_BEST_BASELINE]
        assert table.at[ticker, "gate"] == register.data.tags[names.TAG_DECISION] == "refused"  # min_improvement=1
        assert table.at[ticker, "vs baseline"] == register.data.tags[names.TAG_GATE_BASELINE]
        assert float(table.at[ticker, "ci low"]) <= float(table.at[ticker, "improvement"])
        assert float(table.at[ticker, "improvement"]) <= float(table.at[ticker, "ci high"])
    scores = pd.read_csv(
        io.StringIO(
            mlflow.artifacts.load_text(
                names.run_uri(first.run_id, names.artifact(names.UNIVERSE_DIR, names.UNIVERSE_SCORES))
            )
        ),
        index_col="ticker",
    )
    assert list(scores.index) == ["SPY", "GLD"]
    assert set(FAMILIES) <= set(scores.columns)
    for ticker in ("SPY", "GLD"):
        assert scores.loc[ticker, table.at[ticker, "family"]] == pytest.approx(float(table.at[ticker, "cv score"]))
    page = mlflow.artifacts.load_text(names.run_uri(first.run_id, names.artifact(names.UNIVERSE_DIR, "report.html")))
    headline = mlflow.get_run(first.run_id).data.tags[names.TAG_VERDICT]
    assert headline.startswith("3 tickers (2011-01-03 to 2012-08-31): ") and "1 failed (BAD)" in headline
    assert html.escape(headline) in page and "<img" in page


def test_every_pipeline_and_its_steps_fork_from_the_universes_own_server(first: ProjectRun):
    """A ticker pays for neither a new interpreter nor servers of its own: each main is forked from
    the universe's plain server, and so is every step of every pipeline (these families need no
    other server)."""
    runs = pipelines(first.run_id)
    universe_process = mlflow.get_run(first.run_id).data.tags[names.TAG_PROCESS]
    servers = {r.data.tags[names.TAG_FORKED_FROM] for r in runs.values()}
    assert len(servers) == 1 and universe_process not in servers
    for ticker in ("SPY", "GLD"):
        assert runs[ticker].data.tags[names.TAG_LAUNCHER] == names.FORKSERVER
        steps = json.loads(runs[ticker].data.tags[names.TAG_STEP_RUNS])
        assert {"fetch_data", "train_logreg", "tune", "report"} <= steps.keys()
        for step, run_id in steps.items():
            assert {mlflow.get_run(run_id).data.tags[names.TAG_FORKED_FROM]} == servers, step


@pytest.fixture(scope="module")
def resumed(first: ProjectRun, module_store: Store, folder) -> ProjectRun:
    """The same tickers once BAD's file holds prices (IBM's bars), and one more, NEW (the same bars)."""
    shutil.copy(FIXTURES / "IBM.csv", folder / "BAD.csv")
    shutil.copy(FIXTURES / "IBM.csv", folder / "NEW.csv")
    return mlflow_run(module_store, "universe", universe_params(folder, "SPY,GLD,BAD,NEW"), timeout=1200)


def test_after_a_failure_the_failed_ticker_runs_again_and_an_added_one_runs_alone(
    first: ProjectRun, resumed: ProjectRun
):
    universe = finished(resumed)
    runs = pipelines(universe.info.run_id)
    before = pipelines(first.run_id)
    # SPY and GLD are links to the pipelines of the first universe; BAD (fixed) and NEW (added) ran.
    for ticker in ("SPY", "GLD"):
        assert runs[ticker].data.tags[names.TAG_REUSED_RUN] == before[ticker].info.run_id
    for ticker in ("BAD", "NEW"):
        assert names.TAG_REUSED_RUN not in runs[ticker].data.tags and runs[ticker].info.status == "FINISHED"
    table = tickers_table(universe.info.run_id)
    assert list(table["status"]) == ["cached", "cached", "finished", "finished"]
    assert universe.data.tags[names.TAG_FAILED_TICKERS] == ""
    assert "0 failed" in universe.data.tags[names.TAG_VERDICT]
    # NEW holds BAD's bars, so its pipeline finds what BAD's found: the same data, seeds and code.
    assert table.at["NEW", "family"] == table.at["BAD", "family"]
    assert float(table.at["NEW", "cv score"]) == float(table.at["BAD", "cv score"])


def test_the_same_universe_again_reuses_every_pipeline(resumed: ProjectRun, module_store: Store, folder):
    again = finished(mlflow_run(module_store, "universe", universe_params(folder, "SPY,GLD,BAD,NEW"), timeout=300))
    assert list(tickers_table(again.info.run_id)["status"]) == ["cached"] * 4
    reused = {run.data.tags[names.TAG_REUSED_RUN] for run in pipelines(again.info.run_id).values()}
    assert reused == set(json.loads(finished(resumed).data.tags[names.TAG_PIPELINE_RUNS]).values())


def test_a_bad_ticker_is_refused_before_any_pipeline_starts(store: Store, folder):
    """The other refusals (a ticker twice, a missing folder, bad settings) are the same check,
    tested directly in tests/unit/test_universe.py."""
    result = mlflow_run(store, "universe", universe_params(folder, "SPY,GL D"), timeout=300)
    assert result.returncode != 0
    [line] = result.error_lines()
    assert line.startswith("universe: error: tickers 'GL D' is not a ticker symbol"), result.stderr
    assert mlflow.get_run(result.run_id).info.status == "FAILED"
    assert pipelines(result.run_id) == {}
