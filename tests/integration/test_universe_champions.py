"""The universe report shows each ticker's champion: a champion of SPY registered before the universe
runs, watched by that ticker's pipeline on the days after its refit range, and shown with its age
and health; GLD, without one, shows none."""

from __future__ import annotations

import io
import json
import shutil

import mlflow
import pandas as pd
import pytest

from psystock import contract, data, names
from tests.helpers.runs import FIXTURES, finished, mlflow_run, small_pipeline

pytestmark = pytest.mark.integration

REFIT_END = "2012-03-30"


@pytest.fixture(scope="module")
def champion_of_spy(module_store):
    """A logistic regression on SPY's up/down windows up to REFIT_END, registered as register
    registers a champion."""
    from psystock.contract import Recipe
    from psystock.features import make_table
    from psystock.mlflow_io.champion import promote
    from psystock.mlflow_io.served_model import log_served_model
    from psystock.models import get_family

    bars = data.validate_prices(data.read_csv(str(FIXTURES / "SPY.csv"))).frame
    early = bars[(bars["Date"] >= "2011-01-01") & (bars["Date"] <= REFIT_END)].reset_index(drop=True)
    table = make_table(early, "updown", 14).frame
    family = get_family("logreg")
    model = family.fit(table.iloc[:, :-1], table.iloc[:, -1], family.defaults(), 1)
    with mlflow.start_run(experiment_id=module_store.experiment_id, run_name="SPY champion") as run:
        log_served_model(family, model, Recipe("logreg", "updown", 14, 1e-5), early)
    tags = {
        names.VERSION_TAG_REFIT_RANGE: f"{table.index[0].date()}..{REFIT_END}",
        names.VERSION_TAG_CONTRACT: contract.CONTRACT,
        names.VERSION_TAG_HOLDOUT_CI: "-0.2..0.2",
    }
    return promote("SPY", run.info.run_id, tags)


def test_each_tickers_champion_is_watched_by_its_pipeline_and_shown_with_its_age_and_health(
    module_store, champion_of_spy, tmp_path
):
    for ticker in ("SPY", "GLD"):
        shutil.copy(FIXTURES / f"{ticker}.csv", tmp_path / f"{ticker}.csv")
    params = small_pipeline(tmp_path, start="2011-01-01", end="2012-08-31", max_evals=1, families="logreg")
    universe = finished(mlflow_run(module_store, "universe", params | {"tickers": "SPY,GLD"}, timeout=1200))
    path = names.artifact(names.UNIVERSE_DIR, names.UNIVERSE_TICKERS)
    table = pd.read_csv(io.StringIO(mlflow.artifacts.load_text(names.run_uri(universe.info.run_id, path))))
    table = table.set_index("ticker")
    pipelines = json.loads(universe.data.tags[names.TAG_PIPELINE_RUNS])
    steps = json.loads(mlflow.get_run(pipelines["SPY"]).data.tags[names.TAG_STEP_RUNS])
    watched = mlflow.get_run(steps["monitor"])  # the pipeline watched the champion it found
    assert watched.data.tags[names.TAG_MONITORED_MODEL] == f"models:/psystock-SPY/{champion_of_spy}"
    assert watched.data.metrics["live_days"] > 30
    assert table.at["SPY", "champion"] == f"models:/psystock-SPY/{champion_of_spy}"
    assert table.at["SPY", "health"] == watched.data.tags[names.TAG_HEALTH] in ("ok", "degraded")
    assert table.at["SPY", "champion age (days)"] == 0
    assert pd.isna(table.at["SPY", "challenger"])  # min_improvement=1: the gate refused SPY's candidate
    assert pd.isna(table.at["GLD", "champion"]) and "monitor" not in json.loads(
        mlflow.get_run(pipelines["GLD"]).data.tags[names.TAG_STEP_RUNS]
    )
    page = mlflow.artifacts.load_text(
        names.run_uri(universe.info.run_id, names.artifact(names.UNIVERSE_DIR, "report.html"))
    )
    assert f"v{champion_of_spy} (0 d)" in page
