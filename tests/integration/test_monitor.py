"""Live scoring through the real `mlflow run`: a champion registered by main on planted bars, then
watched on the days after its refit range, once with its signal going on and once with it stopped;
and main itself watching the champion it finds."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from psystock import names
from tests.helpers.runs import finished, mlflow_run
from tests.helpers.synthetic import bars_from_labels, planted_labels, write

pytestmark = pytest.mark.integration

TICKER = "LIVE"
REFIT_END = "2020-03-10"  # the 800th day from 2018-01-01
QUICK = {"ticker": TICKER, "start": "2018-01-01", "families": "logreg", "max_evals": 3, "cv_folds": 3}


@pytest.fixture(scope="module")
def bars(tmp_path_factory):
    """1,100 days whose up days repeat the day two back 85% of the time; in ``stopped`` the newest
    300 are a fair coin instead. The first 800 days are the same bars in both."""
    going_on = planted_labels(1100, follow=0.85, seed=8)
    stopped = going_on.copy()
    stopped[800:] = np.random.default_rng(9).integers(0, 2, 300)
    folder = tmp_path_factory.mktemp("live")
    return {
        name: write(bars_from_labels(labels, seed=8), folder / f"{name}.csv")
        for name, labels in (("going_on", going_on), ("stopped", stopped))
    }


@pytest.fixture(scope="module")
def registered(module_store, bars):
    """main over the first 800 days: the planted signal passes the gate and becomes the champion."""
    run = finished(
        mlflow_run(module_store, "main", {**QUICK, "source": bars["stopped"], "end": REFIT_END}, timeout=900)
    )
    assert run.data.tags[names.TAG_REGISTRY_DECISION] == "registered", run.data.tags
    steps = json.loads(run.data.tags[names.TAG_STEP_RUNS])
    assert "monitor" not in steps  # no champion yet when it began
    return run


def monitored(store, source):
    result = mlflow_run(store, "monitor", {"ticker": TICKER, "source": source})
    return result, finished(result)


def test_a_champion_whose_signal_goes_on_is_ok(module_store, registered, bars):
    result, run = monitored(module_store, bars["going_on"])
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["psystock.health"] == "ok", tags["psystock.health_reason"]
    assert tags["psystock.monitored_model"] == f"models:/psystock-{TICKER}/1"
    assert metrics["live_days"] == 300 and metrics["live_hit_rate"] > 0.75
    assert (
        f"{TICKER} models:/psystock-{TICKER}/1: ok (mcc over the 300 day(s) since the refit range ended"
        in result.stdout
    )


def test_a_champion_whose_signal_stopped_in_the_newest_bars_is_degraded(module_store, registered, bars):
    _, run = monitored(module_store, bars["stopped"])
    tags, metrics = run.data.tags, run.data.metrics
    version = mlflow.MlflowClient().get_model_version_by_alias(f"psystock-{TICKER}", "champion")
    low, _, high = version.tags["holdout_interval"].partition("..")
    assert tags["psystock.health"] == "degraded"
    assert tags["psystock.health_reason"].endswith(f"wholly below the holdout's [{float(low):.3f}, {float(high):.3f}]")
    assert metrics["live_mcc_ci_high"] < float(low)
    # What it scored: the champion's causal answer on each of the 300 days, against the bars.
    days = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/monitor/days.csv"))
    truth = pd.read_csv(bars["stopped"])
    truth = truth.assign(up=(truth["Close"] - truth["Open"]) / truth["Open"] > 1e-5).set_index("Date")["up"]
    assert days["day"].iloc[0] == "2020-03-11" and len(days) == 300
    assert (days["truth"].to_numpy() == truth.loc[days["day"]].to_numpy().astype(int)).all()
    assert metrics["live_hit_rate"] == pytest.approx(days["hit"].mean())
    # The running figures, one value per day, drawn by the UI against the day.
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "live_running_hit_rate")
    assert [m.step for m in history] == list(range(300))
    assert history[0].timestamp == pd.Timestamp("2020-03-11").value // 1_000_000
    assert history[-1].value == pytest.approx(metrics["live_hit_rate"])
    assert {"plots/live_equity.png", "plots/live_mcc.png"} <= {
        f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id, "plots")
    }


def test_main_watches_the_champion_it_finds_on_the_days_after_its_refit_range(module_store, registered, bars):
    run = finished(
        mlflow_run(module_store, "main", {**QUICK, "source": bars["stopped"], "end": "2021-01-04"}, timeout=900)
    )
    steps = json.loads(run.data.tags[names.TAG_STEP_RUNS])
    watched = mlflow.get_run(steps["monitor"])
    assert watched.data.tags["psystock.health"] == "degraded"
    assert watched.data.tags["psystock.monitored_model"] == f"models:/psystock-{TICKER}/1"
    assert watched.data.metrics["live_days"] == 300
    # Its gate met that champion too: on the days after its refit range, the candidate is weighed against it.
    register = mlflow.get_run(steps["register"])
    assert register.data.tags["psystock.incumbent"] == f"models:/psystock-{TICKER}/1"
    assert register.data.metrics["unseen_days"] > 30


def test_monitor_without_a_champion_is_one_clear_line_and_a_failed_run(module_store, bars):
    result = mlflow_run(module_store, "monitor", {"ticker": "NONE-USD", "source": bars["stopped"]})
    assert result.returncode != 0
    assert "monitor: error: no champion model for NONE-USD yet (psystock-NONE-USD@champion): run main" in result.stderr
    assert mlflow.get_run(result.run_id).info.status == "FAILED"
