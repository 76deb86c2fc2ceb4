"""One serving contract whatever the family: a version of every family, registered as register logs
a champion, served by the real ``mlflow models serve`` and asked by the real ``predict`` step. The
answers have the same columns and agree; bars that cannot give the features are a 400 in one line."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from psystock import contract, names
from psystock.models import BUILT_IN, get_family
from tests.helpers.runs import finished, mlflow_run
from tests.helpers.serving import served

pytestmark = pytest.mark.integration

MODEL = "psystock-every-family"  # not a ticker's: the versions are asked by URI


@pytest.fixture(scope="module")
def bars(fetched) -> pd.DataFrame:
    uri = names.run_uri(fetched.info.run_id, names.PRICES_DIR)
    frame = pd.read_csv(mlflow.artifacts.download_artifacts(f"{uri}/prices.csv"), parse_dates=["Date"])
    return frame.loc[:, list(contract.BARS)]


@pytest.fixture(scope="module")
def versions(module_store, training_data) -> dict[str, str]:
    """Each built-in family fit with its defaults on the build_features run's table, logged with the
    register step's code (the recipe read back from that run) and registered: its version's URI."""
    from psystock.mlflow_io.champion import recipe
    from psystock.mlflow_io.inputs import load_features
    from psystock.mlflow_io.served_model import log_served_model

    data = load_features(training_data)
    tuned_like = mlflow.get_run(run_taking(training_data))
    found = {}
    for name in BUILT_IN:
        family = get_family(name)
        made = recipe(tuned_like, name)
        assert made is not None and made[0].feature_set == "updown"
        with mlflow.start_run(run_name=f"serve_{name}") as run:
            log_served_model(family, family.fit(data.X, data.y, family.defaults(), 7), *made)
        version = mlflow.register_model(names.run_uri(run.info.run_id, names.MODEL), MODEL)
        found[name] = names.model_version_uri(MODEL, version.version)
    return found


def run_taking(training_data: str) -> str:
    """A run whose ``training_data`` names the features run, as a tune run's does."""
    with mlflow.start_run(run_name="lineage") as run:
        mlflow.log_param("training_data", training_data)
    return str(run.info.run_id)


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_familys_version_serves_the_same_columns_as_predict_gives(module_store, fetched, versions, bars, name):
    uri = versions[name]
    prices = names.run_uri(fetched.info.run_id, names.PRICES_DIR)
    predicted = finished(mlflow_run(module_store, "predict", {"model_uri": uri, "prices": prices}))
    with served(module_store, uri) as invoke:
        ok, answer = invoke(bars.tail(40))
        short, refusal = invoke(bars.tail(5))
    assert ok == 200
    [row] = answer["predictions"]
    assert list(row) == list(contract.ANSWER)
    assert row["day"] == predicted.data.tags[names.TAG_PREDICTED_DAY] == "2021-01-01"
    assert row["direction"] == predicted.data.tags[names.TAG_DIRECTION]
    assert row["p_up"] == pytest.approx(predicted.data.metrics["probability_up"], rel=1e-6)
    assert short == 400
    assert refusal["message"].endswith(
        "5 bar(s) given; the updown features over 14 days need the last 14 days: send at least 14 rows, oldest first"
    )
