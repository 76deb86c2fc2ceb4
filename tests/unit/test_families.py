"""The family registry: every family keeps the contract, plugins are found or refused by name,
hyper-parameters parse from one string, and the training entry points follow the declarations."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest
import yaml

from psystock import PsystockError, names
from psystock.forking import STEP_PRELOAD
from psystock.models import (
    BOOK_FAMILIES,
    BUILT_IN,
    KERAS_PRELOAD,
    FamilyInfo,
    all_families,
    choose_families,
    family_info,
    format_hyperparameters,
    get_family,
    parse_hyperparameters,
)
from tests.helpers import throwaway_family
from tests.helpers.runs import write_plugin
from tools import generate as generator

FAMILIES = tuple(all_families())  # a plugin installed here is held to the same contract


def learnable(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Label = feature 0 with 10% noise: any sane model beats chance."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.integers(0, 2, (n, 5)), columns=[str(i) for i in range(5)])
    flip = rng.random(n) < 0.1
    return X, pd.Series(np.where(flip, 1 - X["0"], X["0"]), name="5")


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_learns_a_rule_and_answers_probabilities_the_same_for_a_seed(name):
    family = get_family(name)
    X, y = learnable()
    params = family.defaults()
    first = family.predict_proba(family.fit(X.iloc[:200], y.iloc[:200], params, 3), X.iloc[200:])
    again = family.predict_proba(family.fit(X.iloc[:200], y.iloc[:200], params, 3), X.iloc[200:])
    assert first.shape == (100,) and ((first >= 0) & (first <= 1)).all()
    assert ((first > 0.5) == y.iloc[200:].to_numpy()).mean() > 0.8
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("name", FAMILIES)
def test_hyperparameters_written_as_text_parse_back_to_the_same_values(name):
    family = get_family(name)
    text = format_hyperparameters(family, family.defaults())
    assert text.split(",")[0].partition("=")[0] == family.param_names[0]
    assert parse_hyperparameters(family, text) == family.defaults()
    assert parse_hyperparameters(family, "") == family.defaults()


def test_hyperparameters_are_checked_against_the_familys_declaration():
    forest = get_family("forest")
    assert parse_hyperparameters(forest, " n_estimators=50 , max_depth=3").n_estimators == 50
    with pytest.raises(PsystockError, match="forest has no hyper-parameters depth, trees; its hyper-parameters are"):
        parse_hyperparameters(forest, "depth=3,trees=2")
    with pytest.raises(PsystockError, match="hyper-parameter max_depth must be int, got 'deep'"):
        parse_hyperparameters(forest, "max_depth=deep")
    with pytest.raises(PsystockError, match="'max_depth' is not name=value"):
        parse_hyperparameters(forest, "max_depth")
    with pytest.raises(PsystockError, match="max_depth is given twice"):
        parse_hyperparameters(forest, "max_depth=2,max_depth=3")
    # The estimator's own constraints, as one line.
    with pytest.raises(PsystockError, match="forest: The 'n_estimators' parameter of RandomForestClassifier must be"):
        parse_hyperparameters(forest, "n_estimators=0")
    with pytest.raises(PsystockError, match="num_leaves at least 2"):
        parse_hyperparameters(get_family("lightgbm"), "num_leaves=1")


def test_families_are_chosen_by_name_each_once():
    assert choose_families("logreg, forest") == ("logreg", "forest")
    assert choose_families(",".join(BOOK_FAMILIES)) == BOOK_FAMILIES
    assert choose_families("all") == FAMILIES
    with pytest.raises(PsystockError, match="unknown model families svm; choose among logreg, xgboost"):
        choose_families("logreg,svm")
    with pytest.raises(PsystockError, match="families names logreg more than once"):
        choose_families("logreg,xgboost,logreg")
    with pytest.raises(PsystockError, match="families is empty"):
        choose_families(" , ")
    with pytest.raises(PsystockError, match="unknown model family 'svm'; choose one of logreg, xgboost, keras"):
        family_info("svm")


def test_a_plugin_is_found_through_its_entry_point_and_trained_by_the_generic_step(tmp_path, monkeypatch):
    target = f"{throwaway_family.__name__}:FAMILY"
    monkeypatch.syspath_prepend(str(write_plugin(tmp_path, "psystock-throwaway", {"throwaway": target})))
    info = all_families()["throwaway"]
    assert info == FamilyInfo("throwaway", "throwaway_model", throwaway_family.__name__, plugin="psystock-throwaway")
    assert (info.entry_point, info.label) == ("train", "train_throwaway")
    family = get_family("throwaway")
    assert family.info == info and family.param_names == ("max_depth", "min_samples_leaf")
    assert choose_families("logreg,throwaway") == ("logreg", "throwaway")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "psystock_no_such_module:FAMILY",
            r"model family 'broken' from package psystock-broken \(psystock.families "
            r"entry point broken = psystock_no_such_module:FAMILY\) cannot be loaded: ModuleNotFoundError: ",
        ),
        ("psystock.models:BUILT_IN", r"is a dict, not a psystock Family named 'broken'"),
        (f"{throwaway_family.__name__}:FAMILY", r"is a family 'throwaway', not a psystock Family named 'broken'"),
    ],
)
def test_a_broken_plugin_is_one_line_naming_its_package(tmp_path, monkeypatch, target, message):
    monkeypatch.syspath_prepend(str(write_plugin(tmp_path, "psystock-broken", {"broken": target})))
    assert "broken" in all_families()  # listed without importing it
    with pytest.raises(PsystockError, match=message):
        get_family("broken")


def test_a_plugin_may_not_take_a_built_in_name(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(write_plugin(tmp_path, "psystock-fake", {"logreg": "fake:FAMILY"})))
    with pytest.raises(
        PsystockError, match="package psystock-fake declares a model family 'logreg', which is a built-in"
    ):
        all_families()


def test_the_training_entry_points_steps_and_doc_tables_are_the_declarations_rendered():
    """`python -m tools.generate --write` wrote them; a family changed without it fails here."""
    assert generator.stale() == []
    assert generator.main(["--check"]) == 0


def test_a_built_in_family_is_one_module_and_one_line(monkeypatch):
    """Registering a family adds its entry point, its step and its doc table, and nothing else
    changes: the generator writes all three from the module."""
    name = throwaway_family.NAME
    before = generator.rendered()
    line = FamilyInfo(name, "throwaway_model", throwaway_family.__name__)
    monkeypatch.setitem(BUILT_IN, name, line)
    monkeypatch.setattr(throwaway_family, "FAMILY", dataclasses.replace(throwaway_family.FAMILY, info=line))
    after = generator.rendered()
    mlproject = yaml.safe_load(after[generator.MLPROJECT])["entry_points"]
    declared = mlproject["train_throwaway"]["parameters"]
    assert declared["max_depth"] == {"type": "int", "default": 2} and declared["metric"]["default"] == "mcc"
    assert mlproject["train_throwaway"]["command"].startswith("python -m steps.train_throwaway --training_data")
    step = after[generator.STEPS / "train_throwaway.py"]
    assert f"from {throwaway_family.__name__} import ThrowawayParams" in step
    assert 'train_step.main(Args, "throwaway")' in step
    assert "| `min_samples_leaf` | int | 20 | fewest days in a leaf |" in after[generator.DOC]
    old = yaml.safe_load(before[generator.MLPROJECT])["entry_points"]
    assert {k: v for k, v in mlproject.items() if k != "train_throwaway"} == old
    assert set(after) - set(before) == {generator.STEPS / "train_throwaway.py"}


@pytest.mark.parametrize("name", FAMILIES)
def test_every_familys_logged_model_loads_as_pyfunc_and_answers_as_the_fit_does(name, tmp_path):
    """What a training step logs is what `predict` and `mlflow models serve` load: the same
    probability of "up" for every row (a scikit-learn model answers P(down), P(up))."""
    import mlflow

    from psystock.mlflow_io.model_outputs import log_fitted_model
    from tests.helpers.runs import tracking_uri

    family = get_family(name)
    X, y = learnable(120)
    with tracking_uri(f"sqlite:///{tmp_path}/mlflow.db"):
        mlflow.set_experiment("families")
        with mlflow.start_run() as run:
            model = family.fit(X, y, family.defaults(), 1)
            log_fitted_model(family, model, X)
        loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
        answers = np.asarray(loaded.predict(family.as_model_input(X.head(8))), dtype=float)
    p_up = answers[:, 1] if answers.ndim == 2 and answers.shape[1] == 2 else answers.ravel()
    np.testing.assert_allclose(p_up, family.predict_proba(model, X.head(8)), rtol=1e-6)


def test_main_refuses_unknown_families_and_names_a_familys_step_for_rerun_before_any_step_runs():
    from psystock.pipeline import MainArgs, check_settings, parse_rerun, step_names

    with pytest.raises(PsystockError, match="unknown model families svm"):
        check_settings(MainArgs(families="logreg,svm"))
    with pytest.raises(PsystockError, match="features must be one of updown, returns, technical, got 'candles'"):
        check_settings(MainArgs(features="candles"))
    assert "train_forest" in step_names(("logreg", "forest")) and "train_keras" not in step_names(("logreg",))
    assert parse_rerun("train_forest", ("logreg", "forest")) == {"train_forest"}
    with pytest.raises(PsystockError, match="rerun names unknown steps train_keras"):
        parse_rerun("train_keras", ("logreg", "forest"))


@pytest.mark.parametrize(
    ("entry_point", "params", "preload"),
    [
        ("train_keras", {}, (KERAS_PRELOAD,)),
        ("tune", {"family": "keras"}, (KERAS_PRELOAD,)),
        ("train", {"family": "keras", "hyperparameters": ""}, (KERAS_PRELOAD,)),
        ("train_logreg", {}, STEP_PRELOAD),
        ("tune", {"family": "xgboost"}, STEP_PRELOAD),
        ("fetch_data", {}, STEP_PRELOAD),
        ("train", {}, STEP_PRELOAD),
        ("train", {"family": "svm"}, STEP_PRELOAD),  # a family this process does not know
    ],
)
def test_a_step_forks_from_the_server_of_its_familys_preloads(entry_point, params, preload):
    from psystock.forking import preload_of

    assert preload_of(entry_point, params) == preload


class Started:
    """Stands in for a forkserver: records that it was asked to start."""

    def __init__(self, started, extra):
        self.started, self.extra = started, extra

    def ensure_running(self):
        self.started.append(self.extra)


def test_a_pipeline_starts_its_families_servers_before_the_steps_one(monkeypatch):
    from psystock import forking
    from psystock.pipeline import StepRunner

    started: list[tuple[str, ...]] = []
    monkeypatch.setattr(forking, "server", lambda extra=(): Started(started, extra))

    def warm_up(launcher: str, families: tuple[str, ...]) -> list[tuple[str, ...]]:
        started.clear()
        StepRunner("0", "parent", launcher=launcher, env_manager="local", families=families)._warm_up()
        return started

    # TensorFlow, the longest import, first; fetch_data and the other steps fork from the steps' one.
    assert warm_up(names.FORKSERVER, ("logreg", "xgboost", "keras")) == [(KERAS_PRELOAD,), STEP_PRELOAD]
    assert warm_up(names.FORKSERVER, ("keras",)) == [(KERAS_PRELOAD,), STEP_PRELOAD]
    assert warm_up(names.FORKSERVER, ("logreg",)) == [STEP_PRELOAD]
    assert warm_up(names.SUBPROCESS, ("keras",)) == []


def test_main_starts_the_plain_server_first_thing_only_when_its_steps_fork_warm(monkeypatch):
    from psystock import forking

    started: list[tuple[str, ...]] = []
    monkeypatch.setattr(forking, "server", lambda extra=(): Started(started, extra))
    argv = ["--ticker", "BTC-USD", "--launcher", "forkserver", "--env_manager", "local", "--families", "keras"]
    forking.warm_up_driver(argv)
    assert started == [()]  # Keras's own starts with the first launch, not for a pipeline all cached
    forking.warm_up_driver([*argv, "--launcher", "subprocess"])
    forking.warm_up_driver([*argv, "--env_manager", "virtualenv"])
    assert started == [()]


@pytest.mark.parametrize(
    "lent",
    [
        '{"": ["/tmp/no-such-socket", PID]}',  # lent to another process: this one's parent is no server
        "not json",
        '["", 1]',
        "",
    ],
)
def test_only_a_process_forked_by_a_lending_server_borrows_it(monkeypatch, lent):
    from psystock import forking

    monkeypatch.setenv(forking.LENT_SERVERS, lent.replace("PID", str(os.getpid())))  # never its own parent
    assert forking._lent(()) is None


def test_a_driver_lends_only_servers_that_are_running(monkeypatch):
    from psystock import forking

    monkeypatch.setattr(forking, "_servers", {(): forking._Server()})  # made, never started
    assert forking.lent_servers() == {}
