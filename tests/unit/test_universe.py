"""A universe's pure parts: tickers, what each pipeline gets, and the cross-ticker report."""

from __future__ import annotations

import dataclasses
import math
from datetime import date
from pathlib import Path

import pytest

from psystock import PsystockError, fanout, universe
from psystock.entry_points import parse_args
from psystock.fanout import UniverseArgs
from psystock.models import BOOK_FAMILIES
from psystock.pipeline import MainArgs
from psystock.report import PipelineSummary
from psystock.tickers import check_ticker, parse_tickers
from psystock.universe import TickerResult


@pytest.mark.parametrize("ticker", ["SPY", "BRK-B", "^GSPC", "EURUSD=X", "0700.HK", "ES=F", "A" * 20])
def test_symbols_exchanges_use_are_accepted(ticker):
    assert check_ticker(ticker) == ticker


@pytest.mark.parametrize(
    "ticker",
    ["", "A" * 21, "SP Y", "SPY'", "-SPY", ".SPY", "SPY/", "../etc", "SPY,GLD", "SPY\n", "ÅPY", "S*", "a'b OR 1=1"],
)
def test_anything_else_is_refused_with_what_a_ticker_may_hold(ticker):
    with pytest.raises(PsystockError, match=r"is not a ticker symbol: use letters, digits and \. - \^ ="):
        check_ticker(ticker)


def test_tickers_come_as_a_list_or_a_file_with_comments(tmp_path):
    assert parse_tickers(" SPY, GLD ,IBM,") == ["SPY", "GLD", "IBM"]
    watch = tmp_path / "watch.txt"
    watch.write_text("# metals\nGLD\n\nSLV  # silver\n  SPY\n")
    assert parse_tickers(f"@{watch}") == ["GLD", "SLV", "SPY"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "tickers is empty"),
        (" , ", "tickers is empty"),
        ("SPY,GLD,SPY", "tickers names SPY more than once"),
        ("SPY,BAD TICKER", "tickers 'BAD TICKER' is not a ticker symbol"),
        ("@/nonexistent/watch.txt", "tickers file not found: /nonexistent/watch.txt"),
    ],
)
def test_bad_ticker_lists_are_refused(text, error):
    with pytest.raises(PsystockError, match=error):
        parse_tickers(text)


def test_a_bad_line_of_a_tickers_file_is_named(tmp_path):
    watch = tmp_path / "watch.txt"
    watch.write_text("SPY\nG;LD\n")
    with pytest.raises(PsystockError, match=r"watch.txt line 2: 'G;LD' is not a ticker symbol"):
        parse_tickers(f"@{watch}")


def args(**changes: str) -> UniverseArgs:
    argv = {"tickers": "SPY,GLD", "source": "yahoo"} | changes
    parsed, _ = parse_args(UniverseArgs, [part for k, v in argv.items() for part in (f"--{k}", v)])
    return parsed


def test_universe_takes_every_parameter_of_main_but_the_ticker_and_passes_each_on():
    main_fields = {f.name for f in dataclasses.fields(MainArgs)}
    universe_fields = {f.name for f in dataclasses.fields(UniverseArgs)}
    assert universe_fields == main_fields - {"ticker"} | set(fanout.OWN)
    given = args(seed="7", keras_epochs="3", rerun="tune", max_parallel="1", spark_master="local[2]")
    params = fanout.pipeline_params(given, "GLD")
    assert set(params) == main_fields
    assert params["ticker"] == "GLD" and params["seed"] == "7" and params["keras_epochs"] == "3"
    assert params["rerun"] == "tune" and params["max_parallel"] == "1"
    # Spark runs the pipelines; each tunes in its own process.
    assert params["spark_master"] == "" and params["source"] == "yahoo"
    # The same values parse back to main's arguments.
    parsed, _ = parse_args(MainArgs, [part for k, v in params.items() for part in (f"--{k}", v)])
    assert parsed.seed == 7 and parsed.ticker == "GLD"


def test_a_pipeline_key_follows_the_code_of_its_own_families_only():
    step = fanout.pipeline_step(args(families="logreg,forest"), "SPY", date(2026, 1, 1))
    assert {"main", "train_logreg", "train_forest", "tune"} <= set(step.code_of)
    assert "train_keras" not in step.code_of
    files = {Path(f).name for f in step.code_files}
    assert {"forest.py", "logreg.py", "estimators.py"} <= files and "keras_net.py" not in files


def test_each_pipeline_reads_its_own_file_of_a_folder_and_is_cached_on_its_content(tmp_path):
    (tmp_path / "SPY.csv").write_text("Date,Open\n")
    given = args(source=str(tmp_path))
    assert fanout.pipeline_params(given, "SPY")["source"] == str(tmp_path / "SPY.csv")
    step = fanout.pipeline_step(given, "SPY", date(2026, 1, 1))
    assert step.inputs.startswith("file:") and step.label == "SPY" and step.tags == {"ticker": "SPY"}
    assert set(step.code_of) == set(fanout.pipeline_code(BOOK_FAMILIES)[0]) and "main" in step.code_of
    assert "train_keras" in step.code_of
    (tmp_path / "SPY.csv").write_text("Date,Open,High\n")
    assert fanout.pipeline_step(given, "SPY", date(2026, 1, 1)).inputs != step.inputs


def test_universe_checks_refuse_before_any_run(tmp_path, monkeypatch):
    assert fanout.check(args(tickers="SPY, GLD")) == ["SPY", "GLD"]
    with pytest.raises(PsystockError) as raised:
        fanout.check(args(source=str(tmp_path / "missing")))
    assert str(raised.value) == (
        f"source '{tmp_path / 'missing'}' is not a folder: give store (the default), yahoo, or a folder with one "
        "<TICKER>.csv per ticker, in Yahoo's layout"
    )
    with pytest.raises(PsystockError, match="max_pipelines must be 0"):
        fanout.check(args(max_pipelines="-1"))
    with pytest.raises(PsystockError, match="rerun names unknown steps nope"):
        fanout.check(args(rerun="nope"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    assert fanout.check(args(spark_master="local[2]"))
    with pytest.raises(PsystockError, match=r"cannot log to sqlite:///.*set MLFLOW_TRACKING_URI to a tracking server"):
        fanout.check(args(spark_master="spark://head:7077"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.team:5000")
    assert fanout.check(args(spark_master="spark://head:7077"))


def test_by_default_one_pipeline_more_than_the_cpus_runs_at_once(monkeypatch):
    assert fanout.pipeline_slots(0, 2) == 3 and fanout.pipeline_slots(0, None) == 2
    assert fanout.pipeline_slots(2, 8) == 2
    monkeypatch.setattr(fanout.os, "cpu_count", lambda: 4)
    assert fanout.make_runner(args(), "0", "run", {}).max_parallel == 5
    assert fanout.make_runner(args(max_pipelines="1"), "0", "run", {}).max_parallel == 1


def test_spark_workers_fetch_the_git_url_the_universe_ran_from(tmp_path):
    git = {"mlflow.source.name": "git://host/psystock.git", "mlflow.source.git.commit": "abc123"}
    assert fanout.git_source(git) == ("git://host/psystock.git", "abc123")
    # A local checkout under git: the workers run the project path.
    assert fanout.git_source({"mlflow.source.name": str(tmp_path), "mlflow.source.git.commit": "abc"}) == ("", None)
    assert fanout.git_source({"mlflow.source.name": "file:///work/psystock"}) == ("", None)


def summary(ticker: str, family: str = "logreg", decision: str = "refused", **changes) -> PipelineSummary:
    base = PipelineSummary(
        ticker=ticker,
        first_date="2011-01-03",
        last_date="2012-08-31",
        metric="mcc",
        ranked_by="cv_mcc_mean",
        family=family,
        score=0.05,
        score_std=0.02,
        best_baseline="baseline_persistence",
        best_baseline_score=0.01,
        decision=decision,
        gate_baseline="baseline_persistence",
        improvement=0.03,
        ci_low=-0.01,
        ci_high=0.07,
        confidence=0.95,
        sharpe=0.8,
        buy_and_hold_sharpe=0.6,
        registered="models:/psystock-x/1" if decision == "registered" else "",
        verdict="",
        scores={family: 0.05, "xgboost": 0.01, "baseline_persistence": 0.01},
        baselines=("baseline_persistence",),
    )
    return dataclasses.replace(base, **changes)


RESULTS = [
    TickerResult(
        "SPY",
        "finished",
        "r1",
        60.0,
        summary("SPY", "logreg", "registered"),
        life=universe.ChampionLife("models:/psystock-SPY/3", 40, "degraded", "models:/psystock-SPY/4"),
    ),
    TickerResult(
        "GLD",
        "cached",
        "r2",
        None,
        summary("GLD", "keras", scores={"keras": 0.2, "baseline_up": 0.0}, baselines=("baseline_up",)),
    ),
    TickerResult("BAD", "FAILED", "r3", 3.0, None, "main: error: step failed: fetch_data: no prices"),
]


def test_a_summary_survives_its_json():
    found = summary("SPY")
    assert PipelineSummary.from_dict(found.to_dict()) == found
    assert PipelineSummary.from_dict(found.to_dict() | {"added_later": 1}) == found


def test_the_headline_says_what_was_registered_what_won_and_what_failed():
    assert universe.headline(RESULTS) == (
        "3 tickers (2011-01-03 to 2012-08-31): a model beat every baseline on the holdout for 1 of 3 tickers "
        "(SPY); the selection chose logreg for 1, keras for 1; 1 failed (BAD)."
    )
    assert universe.headline(RESULTS[1:2]).startswith(
        "1 tickers (2011-01-03 to 2012-08-31): no model beat every baseline"
    )


def test_table_matrix_and_wins():
    table = universe.tickers_table(RESULTS).set_index("ticker")
    assert list(table.index) == ["SPY", "GLD", "BAD"]
    assert table.at["SPY", "registered"] == "models:/psystock-x/1" and table.at["BAD", "error"].endswith("no prices")
    assert math.isnan(table.at["BAD", "cv score"]) and table.at["GLD", "family"] == "keras"
    matrix = universe.score_matrix(RESULTS)
    # Families first, then baselines; a candidate a pipeline did not score is NaN.
    assert list(matrix.columns) == ["logreg", "xgboost", "keras", "baseline_persistence", "baseline_up"]
    assert list(matrix.index) == ["SPY", "GLD"]
    assert matrix.at["GLD", "keras"] == 0.2 and math.isnan(matrix.at["GLD", "logreg"])
    wins = universe.win_counts(RESULTS)
    assert wins.to_dict("records") == [
        {"family": "logreg", "chosen": 1, "registered": 1},
        {"family": "keras", "chosen": 1, "registered": 0},
    ]


def test_the_readable_table_puts_each_finding_in_one_cell():
    table = universe.display_table(RESULTS).set_index("ticker")
    assert table.at["SPY", "cv score ± sd"] == "0.050 ± 0.020"
    assert table.at["SPY", "gate"] == "registered" and table.at["SPY", "against"] == "persistence"
    assert table.at["SPY", "improvement [interval]"] == "+0.030 [-0.010, +0.070]"
    assert table.at["SPY", "Sharpe (buy-and-hold)"] == "0.800 (0.600)"
    assert table.at["GLD", "best baseline"] == "persistence 0.010"
    assert table.at["SPY", "registered"] == "v1" and table.at["GLD", "registered"] == ""
    assert table.at["BAD", "status"] == "FAILED" and table.at["BAD", "family"] == ""
    assert universe.failures(RESULTS) == ["BAD: main: error: step failed: fetch_data: no prices"]


def test_each_tickers_champion_shows_its_version_age_health_and_a_challenger_waiting():
    shown = universe.display_table(RESULTS).set_index("ticker")
    assert (shown.at["SPY", "champion"], shown.at["SPY", "health"], shown.at["SPY", "challenger"]) == (
        "v3 (40 d)",
        "degraded",
        "v4",
    )
    assert (shown.at["GLD", "champion"], shown.at["GLD", "health"]) == ("", "")
    table = universe.tickers_table(RESULTS).set_index("ticker")
    assert table.at["SPY", "champion"] == "models:/psystock-SPY/3" and table.at["SPY", "champion age (days)"] == 40
    assert table.at["SPY", "challenger"] == "models:/psystock-SPY/4" and math.isnan(
        table.at["GLD", "champion age (days)"]
    )
    assert "degraded" in universe.render_html("u", RESULTS, None, "mcc")


def test_a_champions_life_is_read_from_the_registry_and_its_latest_monitor(store):
    from datetime import UTC, datetime, timedelta

    import mlflow
    from sklearn.dummy import DummyClassifier

    from psystock.mlflow_io.champion import life, promote

    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), name="model", pip_requirements=[])
    assert life("SPY", store.experiment_id, datetime.now(UTC)) == universe.ChampionLife()
    promote("SPY", run.info.run_id, {})  # version 1, the champion
    assert life("SPY", store.experiment_id, datetime.now(UTC) + timedelta(days=3)) == universe.ChampionLife(
        "models:/psystock-SPY/1", 3, "unwatched", ""
    )
    for health in ("degraded", "ok"):  # the latest monitor of it counts
        with mlflow.start_run(experiment_id=store.experiment_id):
            mlflow.set_tags({"psystock.monitored_model": "models:/psystock-SPY/1", "psystock.health": health})
    promote("SPY", run.info.run_id, {}, alias="challenger")  # version 2 waits
    found = life("SPY", store.experiment_id, datetime.now(UTC))
    assert (found.health, found.challenger, found.age_days) == ("ok", "models:/psystock-SPY/2", 0)
    promote("SPY", run.info.run_id, {})  # version 3 becomes champion: the older challenger no longer waits
    assert life("SPY", store.experiment_id, datetime.now(UTC)).challenger == ""


def test_status_lines_and_gate_text():
    assert RESULTS[0].summary is not None
    assert universe.gate_text(RESULTS[0].summary) == "registered: +0.030 [-0.010, +0.070] vs baseline_persistence"
    lines = [universe.status_line(r) for r in RESULTS]
    assert lines[0].startswith("  SPY        finished run r1") and "logreg" in lines[0]
    assert lines[2].endswith("main: error: step failed: fetch_data: no prices")


def test_the_pages_lead_with_the_headline():
    page = universe.render_html("psystock universe", RESULTS, b"png", "mcc")
    assert page.index(universe.headline(RESULTS).split(":")[0]) < page.index("<h2>Tickers</h2>")
    assert "data:image/png;base64," in page
    markdown = universe.render_markdown("psystock universe", RESULTS)
    assert markdown.splitlines()[2] == universe.headline(RESULTS)
    assert "| BAD" in markdown and "### Failed\n\n- BAD: main: error" in markdown
    assert "<li>BAD: main: error: step failed: fetch_data: no prices</li>" in page


def test_failure_names_the_failed_pipelines():
    assert fanout.failure(RESULTS[:2]) is None
    error = fanout.failure(RESULTS)
    assert error is not None
    assert str(error).startswith("1 of 3 pipelines failed: BAD (run r3);")
