"""predict's path from bars to an answer: the real logged model of each family, real bars; the
serving contract's model (bars in, the next day out) and an older version's (a feature row in)."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from psystock import PsystockError, contract, data, names
from psystock.contract import Recipe
from psystock.features import DEFAULT_FEATURES, latest_features, make_table
from psystock.mlflow_io.serving import Prediction, check_columns, loaded_model, predict_next_day, probability_up
from psystock.models import all_families, get_family
from tests.helpers.runs import BTC_CSV, tracking_uri

WINDOW = 14


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    """The last year of the committed BTC-USD bars (a 7-day calendar, to 2020-12-31)."""
    frame = data.validate_prices(data.read_csv(str(BTC_CSV))).frame
    return frame[frame["Date"] >= "2020-01-01"].reset_index(drop=True)


@pytest.fixture(scope="module")
def logged(bars, tmp_path_factory):
    """Each family fit on the default features of those bars and logged as a training step logs it."""
    import mlflow

    from psystock.mlflow_io.model_outputs import log_fitted_model

    table = make_table(bars, DEFAULT_FEATURES, WINDOW).frame
    X, y = table.iloc[:, :-1], table.iloc[:, -1]
    uri = f"sqlite:///{tmp_path_factory.mktemp('serving')}/mlflow.db"
    models = {}
    with tracking_uri(uri):
        mlflow.set_experiment("serving")
        for name in all_families():
            family = get_family(name)
            with mlflow.start_run() as run:
                model = family.fit(X, y, family.defaults(), 1)
                log_fitted_model(family, model, X)
            models[name] = (model, names.run_uri(run.info.run_id, names.MODEL))
        yield models


@pytest.fixture(scope="module")
def served(logged, bars):
    """Each family's fit wrapped in the serving contract, as register logs a champion."""
    import mlflow

    from psystock.mlflow_io.served_model import log_served_model

    models = {}
    for name, (model, _) in logged.items():
        with mlflow.start_run() as run:
            log_served_model(get_family(name), model, Recipe(name, DEFAULT_FEATURES, WINDOW, 1e-5), bars)
        models[name] = names.run_uri(run.info.run_id, names.MODEL)
    return models


@pytest.mark.parametrize("name", all_families())
def test_each_familys_contract_model_takes_bars_and_answers_the_next_day_as_its_fit_does(name, bars, logged, served):
    import mlflow

    model, _ = logged[name]
    loaded = mlflow.pyfunc.load_model(served[name])
    answer = loaded.predict(bars.loc[:, list(contract.BARS)].tail(40))
    row = latest_features(bars, DEFAULT_FEATURES, WINDOW, pd.Timestamp("2021-01-01"))
    expected = float(get_family(name).predict_proba(model, row)[0])
    assert list(answer.columns) == list(contract.ANSWER) and len(answer) == 1
    assert answer.loc[0, "day"] == "2021-01-01"
    assert answer.loc[0, "p_up"] == pytest.approx(expected, rel=1e-6)
    assert answer.loc[0, "direction"] == ("up" if expected > 0.5 else "down")
    # Its recipe is readable without loading it; its input example is the bars it needs.
    assert loaded.metadata.metadata == Recipe(name, DEFAULT_FEATURES, WINDOW, 1e-5).config()
    assert list(loaded.metadata.get_input_schema().input_names()) == list(contract.BARS)
    prediction = predict_next_day(loaded, served[name], "BTC-USD", bars, "returns", 3, 0.5)  # not its features
    assert (prediction.as_of, prediction.day) == (date(2020, 12, 31), date(2021, 1, 1))
    assert prediction.probability_up == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", all_families())
def test_a_contract_models_family_model_is_saved_with_its_familys_requirements_not_inferred_ones(name, served):
    import mlflow

    from psystock.mlflow_io.served_model import FAMILY_MODEL

    inner = Path(mlflow.artifacts.download_artifacts(f"{served[name]}/artifacts/{FAMILY_MODEL}/requirements.txt"))
    assert inner.read_text().split() == list(get_family(name).pip_requirements)


def test_a_contract_model_refuses_too_few_bars_in_one_line(bars, served):
    uri = served["logreg"]
    with (
        pytest.raises(PsystockError, match=r"the updown features over 14 days need the last 14 days: send at least 14"),
        loaded_model(uri, "BTC-USD") as model,
    ):
        predict_next_day(model, uri, "BTC-USD", bars.tail(5), DEFAULT_FEATURES, WINDOW, 1e-5)


@pytest.mark.parametrize("name", all_families())
def test_each_familys_logged_model_answers_for_the_day_after_the_last_bar_as_its_fit_does(name, bars, logged):
    model, uri = logged[name]
    family = get_family(name)
    with loaded_model(uri, "BTC-USD") as loaded:
        prediction = predict_next_day(loaded, uri, "BTC-USD", bars, DEFAULT_FEATURES, WINDOW, 1e-5)
    assert (prediction.as_of, prediction.day) == (date(2020, 12, 31), date(2021, 1, 1))
    row = latest_features(bars, DEFAULT_FEATURES, WINDOW, pd.Timestamp("2021-01-01"))
    expected = float(family.predict_proba(model, row)[0])
    assert prediction.probability_up == pytest.approx(expected, rel=1e-6)
    assert prediction.direction == ("up" if expected > 0.5 else "down")
    assert prediction.model_uri == uri


def test_a_loaded_model_leaves_no_copy_of_its_files_behind(bars, served, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with loaded_model(served["logreg"], "BTC-USD") as model:
        assert [p.name for p in tmp_path.iterdir() for p in p.iterdir()] == ["model"]  # downloaded here
        answer = model.predict(bars.loc[:, list(contract.BARS)].tail(40))
    assert len(answer) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_model_refuses_a_row_of_another_feature_set(bars, logged):
    _, uri = logged["logreg"]
    with (
        pytest.raises(PsystockError, match="not the returns features: pass the features set it was trained on"),
        loaded_model(uri, "BTC-USD") as model,
    ):
        predict_next_day(model, uri, "BTC-USD", bars, "returns", WINDOW, 1e-5)


def test_a_tensor_model_takes_any_row_of_its_width():
    from mlflow.models import infer_signature

    schema = infer_signature(np.zeros((2, 3), dtype="float32")).inputs
    check_columns(schema, pd.DataFrame(np.zeros((1, 3))), "updown")
    with pytest.raises(PsystockError, match="the model takes 3 columns, not the returns features"):
        check_columns(schema, pd.DataFrame(np.zeros((1, 4))), "returns")
    check_columns(None, pd.DataFrame(np.zeros((1, 4))), "returns")  # a model without a signature takes its chance


@pytest.mark.parametrize(
    "output",
    [np.array([0.7]), np.array([[0.3, 0.7]]), pd.DataFrame({"0": [0.3], "1": [0.7]}), pd.Series([0.7]), [[0.7]]],
    ids=["probability", "pair", "frame of a pair", "series", "nested list"],
)
def test_p_up_is_read_from_whatever_a_flavour_answers(output):
    assert probability_up(output) == pytest.approx(0.7)


def test_a_prediction_is_one_csv_row_its_tags_and_one_line():
    prediction = Prediction("SPY", date(2012, 12, 28), date(2012, 12, 31), 0.42, "models:/psystock-SPY@champion")
    assert prediction.direction == "down"
    assert prediction.frame().to_dict("records") == [
        {
            "ticker": "SPY",
            "as_of": date(2012, 12, 28),
            "predicted_day": date(2012, 12, 31),
            "direction": "down",
            "probability_up": 0.42,
            "model_uri": "models:/psystock-SPY@champion",
        }
    ]
    assert prediction.tags() == {
        names.TAG_PREDICTED_DAY: "2012-12-31",
        names.TAG_DIRECTION: "down",
        names.TAG_MODEL_URI: "models:/psystock-SPY@champion",
    }
    assert str(prediction) == "SPY 2012-12-31: down (p=0.42)"


def test_a_ticker_without_a_champion_is_told_how_to_get_one(store):
    with (
        pytest.raises(
            PsystockError, match=r"no champion model for SPY yet \(models:/psystock-SPY@champion\): run main"
        ),
        loaded_model(names.model_alias_uri(names.model_name("SPY")), "SPY"),
    ):
        pass
    with (
        pytest.raises(PsystockError, match="cannot load model runs:/0123456789abcdef/model"),
        loaded_model("runs:/0123456789abcdef/model", "SPY"),
    ):
        pass


def test_without_given_bars_a_csv_source_gives_its_whole_file():
    from psystock.price_store import recent_prices

    prices = recent_prices(str(BTC_CSV), "BTC-USD", WINDOW, date(2026, 12, 2))
    assert prices.frame["Date"].iloc[-1] == pd.Timestamp("2020-12-31")
    assert prices.frame.equals(data.validate_prices(data.read_csv(str(BTC_CSV))).frame)


def test_a_tuned_run_on_a_csv_of_features_has_no_recipe_to_rebuild_them_from_bars(store):
    import mlflow

    from psystock.mlflow_io.champion import recipe

    with mlflow.start_run() as run:
        mlflow.log_param("training_data", "/data/my_features.csv")
    assert recipe(mlflow.get_run(run.info.run_id), "logreg") is None


@pytest.mark.parametrize("name", ["logreg", "keras"])
def test_asked_for_its_history_a_contract_model_answers_every_day_as_the_training_table_would(
    name, bars, logged, served
):
    """What a champion would have said each day, from the bars before it: the rows of the training
    table, answered by the fit (how register weighs a champion on days it never saw)."""
    import mlflow

    model, _ = logged[name]
    loaded = mlflow.pyfunc.load_model(served[name])
    history = loaded.predict(bars.loc[:, list(contract.BARS)], params={contract.HISTORY: True})
    table = make_table(bars, DEFAULT_FEATURES, WINDOW).frame
    assert list(history.columns) == list(contract.ANSWER)
    assert list(history["day"]) == list(table.index.strftime("%Y-%m-%d"))  # the first 14 days predict nothing
    expected = get_family(name).predict_proba(model, table.iloc[:, :-1])
    np.testing.assert_allclose(history["p_up"], expected, rtol=1e-6)
    # Each day's answer depends on the days before it only: cut the bars there, the answer stays.
    cut = loaded.predict(bars.loc[:199, list(contract.BARS)], params={contract.HISTORY: True})
    pd.testing.assert_frame_equal(cut, history.iloc[: len(cut)])
