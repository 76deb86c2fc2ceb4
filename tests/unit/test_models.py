import dataclasses
import logging
import os

import numpy as np
import pandas as pd
import pytest

from psystock import PsystockError
from psystock.models import all_families, get_family


def defaults(family):
    """A family's default hyper-parameters, as a mapping to change some of."""
    return dataclasses.asdict(get_family(family).defaults())


def fit(family, X, y, changes=None, seed=1):
    fam = get_family(family)
    return fam.fit(X, y, fam.params(defaults(family) | (changes or {})), seed=seed)


def learnable(n=300, seed=0):
    """Label = feature 0 with 10% noise: any sane model beats chance."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.integers(0, 2, (n, 5)), columns=[str(i) for i in range(5)])
    flip = rng.random(n) < 0.1
    y = pd.Series(np.where(flip, 1 - X["0"], X["0"]), name="5")
    return X, y


def test_unknown_family_is_a_clear_error():
    with pytest.raises(PsystockError, match="unknown model family 'svm'; choose one of logreg, xgboost, keras"):
        get_family("svm")


@pytest.mark.parametrize("family", ["logreg", "xgboost"])
def test_family_learns_a_simple_rule(family):
    fam = get_family(family)
    X, y = learnable()
    model = fit(family, X.iloc[:200], y.iloc[:200])
    proba = np.asarray(fam.predict_proba(model, X.iloc[200:]))
    assert proba.shape == (100,)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert ((proba > 0.5) == y.iloc[200:].to_numpy()).mean() > 0.8


def test_keras_is_deterministic_for_a_seed_and_learns():
    fam = get_family("keras")
    X, y = learnable(200)
    first = fam.predict_proba(fit("keras", X, y, {"epochs": 5}, seed=3), X)
    second = fam.predict_proba(fit("keras", X, y, {"epochs": 5}, seed=3), X)
    other = fam.predict_proba(fit("keras", X, y, {"epochs": 5}, seed=4), X)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"solver": "lbfgs", "l1_ratio": 1.0}, "supports only l1_ratio=0"),
        ({"solver": "simplex"}, "solver must be one of"),
        ({"C": 0.0}, "C must be > 0"),
        ({"class_weight": "heavy"}, "class_weight must be None or balanced"),
    ],
)
def test_logreg_rejects_invalid_parameters(change, message):
    X, y = learnable(50)
    with pytest.raises(PsystockError, match=message):
        fit("logreg", X, y, change)


def test_xgboost_rejects_unknown_objective():
    X, y = learnable(50)
    with pytest.raises(PsystockError, match="objective must be one of"):
        fit("xgboost", X, y, {"objective": "rank:map"})


@pytest.mark.parametrize("family", all_families())
def test_search_space_samples_are_valid_parameters(family):
    from hyperopt.pyll.stochastic import sample

    from psystock.tuning import flatten

    fam = get_family(family)
    rng = np.random.default_rng(0)
    for _ in range(20):
        drawn = flatten(sample(fam.search_space(), rng=rng))
        assert set(drawn) <= set(fam.param_names)  # every sampled name is a declared parameter
        fam.check_params(fam.params(drawn))  # and every sample is a valid point


@pytest.mark.parametrize(
    ("family", "change", "message"),
    [
        ("keras", {"dropout": 1.0}, "dropout must be in"),
        ("keras", {"layers": 0}, "layers must be at least 1"),
        ("xgboost", {"reg_lambda": -1.0}, "reg_lambda must be >= 0"),
    ],
)
def test_the_tuned_parameters_are_checked_like_the_others(family, change, message):
    X, y = learnable(50)
    with pytest.raises(PsystockError, match=message):
        fit(family, X, y, change)


def test_parameters_are_cast_to_their_declared_types_and_unknown_names_refused():
    fam = get_family("xgboost")
    params = fam.params({"max_depth": np.int64(3), "learning_rate": 1})
    assert params.max_depth == 3 and type(params.max_depth) is int
    assert params.learning_rate == 1.0 and type(params.learning_rate) is float
    assert params.num_boost_round == fam.defaults().num_boost_round
    with pytest.raises(PsystockError, match="xgboost has no parameters depth"):
        fam.params({"depth": 3})


def test_real_valued_features_are_standardised_inside_the_model_and_flags_are_not():
    """The reference's 0/1 table fits the bare LogisticRegression (its figures must not move); returns
    go through a StandardScaler in the same pipeline, so the logged model takes raw columns."""
    from sklearn.pipeline import Pipeline

    X, y = learnable()
    assert not isinstance(fit("logreg", X, y), Pipeline)
    returns = X * 0.02 - 0.01
    model = fit("logreg", returns, y)
    assert isinstance(model, Pipeline) and model.steps[0][0] == "standardscaler"
    assert ((get_family("logreg").predict_proba(model, returns) > 0.5) == y).mean() > 0.8


def test_keras_normalises_real_valued_features_in_the_network():
    X, y = learnable(100)
    layers = [type(layer).__name__ for layer in fit("keras", X * 0.02, y, {"epochs": 1}).layers]
    assert layers[0] == "Normalization"
    assert "Normalization" not in [type(layer).__name__ for layer in fit("keras", X, y, {"epochs": 1}).layers]


@pytest.mark.parametrize("changes", [{}, {"dropout": 0.3, "layers": 2}])
def test_cross_validation_reuses_one_keras_network_and_fits_exactly_as_from_scratch(changes):
    """Each fit of a trainer's network starts where a new one would: its weights, its optimizer and
    the random state its dropout draws from (which advances with every batch) put back."""
    from psystock.models.keras_net import Trainer

    fam = get_family("keras")
    X, y = learnable(240)
    params = fam.params(defaults("keras") | {"epochs": 3} | changes)
    trainer = Trainer(params, seed=5)
    for n, scale in ((120, 1.0), (200, 1.0), (200, 0.02)):  # the last: real-valued, normalised
        fresh = fam.predict_proba(fam.fit(X.iloc[:n] * scale, y.iloc[:n], params, seed=5), X.iloc[200:] * scale)
        reused = fam.predict_proba(trainer(X.iloc[:n] * scale, y.iloc[:n]), X.iloc[200:] * scale)
        np.testing.assert_array_equal(reused, fresh)


def test_a_watched_keras_fit_learns_exactly_what_a_quiet_one_does():
    """Validation scored every epoch (a step's final fit, for its curves) or once changes nothing learned."""
    fam = get_family("keras")
    X, y = learnable(200)
    params = fam.params(defaults("keras") | {"epochs": 4})
    quiet = fam.predict_proba(fam.fit(X, y, params, seed=2), X)
    watched = fam.predict_proba(fam.fit(X, y, params, seed=2, verbose=True), X)
    np.testing.assert_array_equal(quiet, watched)


def test_a_watched_keras_fit_reports_each_epoch_as_a_log_line_and_keras_writes_nothing(capfd, caplog):
    """A step's output is its log lines: a watched fit logs every epoch's curves, and neither it
    nor a Keras ``predict`` (as MLflow's check of a logged model's example calls it) writes
    Keras's progress bars, terminal codes and all, to the step's streams."""
    from psystock.models import keras_net

    fam = get_family("keras")
    X, y = learnable(120)
    params = fam.params(defaults("keras") | {"epochs": 3})
    with caplog.at_level(logging.INFO, logger="psystock"):
        model = fam.fit(X, y, params, seed=2, verbose=True)
        model.predict(keras_net.as_model_input(X))
    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("loss " in line and "val_accuracy " in line for line in epochs)
    out, err = capfd.readouterr()
    assert "Epoch" not in out + err and "\x1b[" not in out + err and "step" not in out + err


def test_keras_probabilities_are_predicts_own_to_the_digit():
    """predict_proba feeds the network predict's batches itself: the numbers must be predict's,
    whatever the rows (a last batch of one row, and one of 31), plain or normalised, from one
    function traced once per network."""
    from psystock.models import keras_net

    fam = get_family("keras")
    X, y = learnable(240)
    params = fam.params(defaults("keras") | {"epochs": 2, "layers": 2, "dropout": 0.2})
    for scale in (1.0, 0.02):
        model = fam.fit(X * scale, y, params, seed=6)
        for rows in (1, 31, 33, 64, 240):
            expected = np.asarray(model.predict(keras_net.as_model_input(X.iloc[:rows] * scale), verbose=0)).ravel()
            np.testing.assert_array_equal(fam.predict_proba(model, X.iloc[:rows] * scale), expected)
        # One traced function for batches of every length: a network is traced once.
        assert keras_net._inference_of(model, X.shape[1]).experimental_get_tracing_count() == 1
    assert fam.predict_proba(model, X.iloc[:0]).shape == (0,)


def _network(X, params, seed, adam=None):
    """A network as build makes it; with ``adam``, compiled again with an Adam of those settings."""
    import keras

    from psystock.models import keras_net

    model = keras_net.build(keras_net.as_model_input(X), params, seed=seed)
    if adam:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=params.learning_rate, **adam), loss=model.loss)
    return model


def _keras_own_fit(X, y, params, seed, validation_freq, adam=None, **fit_args):
    """A network trained by Keras's own ``fit`` on the numpy rows, as :func:`_network` made it."""
    import keras

    from psystock.models import keras_net

    model = _network(X, params, seed, adam)
    if isinstance(model.layers[0], keras.layers.Normalization):
        model.layers[0].adapt(keras_net.as_model_input(X))
    keras.utils.set_random_seed(seed)
    history = model.fit(
        keras_net.as_model_input(X),
        np.asarray(y, dtype="float32"),
        epochs=params.epochs,
        batch_size=params.batch_size,
        validation_split=params.validation_split,
        validation_freq=validation_freq,
        shuffle=True,
        verbose=0,
        **fit_args,
    )
    return model, history


@pytest.mark.parametrize(
    ("rows", "changes", "scale"),
    [
        (203, {"validation_split": 0.05}, 1.0),  # 192 kept rows: 12 whole batches of 16
        (203, {"validation_split": 0.0}, 1.0),  # 13 batches, the last of 11 rows
        (203, {"dropout": 0.3, "layers": 2}, 1.0),
        (203, {"validation_split": 0.1}, 0.02),  # real-valued: normalised inside the network
        (150, {"batch_size": 64, "epochs": 12}, 1.0),  # 3 batches an epoch, the last of 22 rows
    ],
)
def test_a_quiet_keras_fit_learns_exactly_what_kerass_own_fit_does(rows, changes, scale):
    """A quiet fit (folds, trials) runs every epoch's batches in one pass, in Keras's own order,
    the validation rows held out as Keras holds them out: the weights and the answers must be
    those of Keras's own fit, to the digit, whatever the batches, the dropout or the scaling."""
    import warnings

    from psystock.models import keras_net

    fam = get_family("keras")
    X, y = learnable(rows)
    X = X * scale
    params = fam.params(defaults("keras") | {"epochs": 3, "batch_size": 16} | changes)
    quiet = keras_net.build(keras_net.as_model_input(X), params, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # TensorFlow's retracing warning among others
        assert keras_net.train(quiet, X, y, params, seed=4) is None  # no history: nobody reads it
    own, _ = _keras_own_fit(X, y, params, seed=4, validation_freq=params.epochs)
    for mine, theirs in zip(quiet.weights, own.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert quiet.optimizer.iterations.numpy() == own.optimizer.iterations.numpy()  # as many steps
    np.testing.assert_array_equal(fam.predict_proba(quiet, X), fam.predict_proba(own, X))


def test_a_quiet_keras_fit_refuses_callbacks_it_would_never_call():
    import keras

    from psystock.models import keras_net

    X, y = learnable(40)
    params = get_family("keras").params(defaults("keras") | {"epochs": 1})
    network = keras_net.build(keras_net.as_model_input(X), params, seed=4)
    with pytest.raises(ValueError, match="a quiet fit runs no callbacks"):
        keras_net.train(network, X, y, params, seed=4, callbacks=[keras.callbacks.History()])


def test_a_fit_reuses_the_shuffle_of_its_rows_and_it_is_kerass_own_whatever_the_batch_size():
    """The order Keras shuffles rows in is drawn once per row count and seed (a tuning's trials all
    fit the same folds with the same seed): a fit with another batch size that reuses it must still
    learn what Keras's own fit does."""
    from psystock.models import keras_net

    X, y = learnable(203)
    keras_net._keras_order.cache_clear()
    for batch_size in (16, 64):
        params = get_family("keras").params(defaults("keras") | {"epochs": 2, "batch_size": batch_size})
        quiet = keras_net.build(keras_net.as_model_input(X), params, seed=4)
        keras_net.train(quiet, X, y, params, seed=4)
        own, _ = _keras_own_fit(X, y, params, seed=4, validation_freq=params.epochs)
        for mine, theirs in zip(quiet.weights, own.weights, strict=True):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert keras_net._keras_order.cache_info().hits == 1


@pytest.mark.parametrize(
    ("rows", "changes", "scale", "batches"),
    [
        (203, {"validation_split": 0.05}, 1.0, 12),  # 192 kept rows: 12 whole batches of 16
        (203, {"validation_split": 0.0}, 1.0, 13),  # the last of 11 rows
        (203, {"dropout": 0.3, "layers": 2}, 1.0, 12),
        (203, {"validation_split": 0.1}, 0.02, 12),  # real-valued: normalised inside the network
        (150, {"batch_size": 64, "epochs": 5}, 1.0, 3),  # an epoch shorter than an execution
    ],
)
def test_a_watched_keras_fit_learns_and_scores_exactly_what_kerass_own_fit_does(rows, changes, scale, batches):
    """A watched fit (a step's final one) makes its epochs' batches and its held-out rows' batches
    once, where Keras's own fit on the rows makes new iterators every epoch; its count of an
    epoch's batches must be Keras's (fewer would learn less, more would warn that the data ran
    out), and its curves, weights and answers Keras's own, epoch by epoch, to the digit."""
    import warnings

    from psystock.models import keras_net

    fam = get_family("keras")
    X, y = learnable(rows)
    X = X * scale
    params = fam.params(defaults("keras") | {"epochs": 3, "batch_size": 16} | changes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        watched = keras_net.train(keras_net.build(X, params, seed=4), X, y, params, seed=4, verbose=True)
    own, counted = _keras_own_fit(X, y, params, seed=4, validation_freq=1)
    assert keras_net.steps_per_epoch(len(X), params) == batches
    assert watched.history.keys() == counted.history.keys()
    assert ("val_loss" in watched.history) == bool(params.validation_split)
    for curve, values in counted.history.items():
        assert len(values) == params.epochs
        np.testing.assert_array_equal(watched.history[curve], values)
    for mine, theirs in zip(watched.model.weights, own.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    np.testing.assert_array_equal(fam.predict_proba(watched.model, X), fam.predict_proba(own, X))


def test_a_watched_keras_fit_autologs_what_kerass_own_fit_on_the_rows_does(store):
    """Autologging records a fit's arguments as its run's parameters and its curves as metrics: a
    watched fit, fed batches it made itself, must record those of Keras's own fit on the rows."""
    import mlflow
    import mlflow.keras

    from psystock.models import keras_net

    fam = get_family("keras")
    X, y = learnable(203)
    params = fam.params(defaults("keras") | {"epochs": 3, "batch_size": 16, "dropout": 0.2})
    mlflow.keras.autolog(log_models=False, log_datasets=False, silent=True)
    try:
        with mlflow.start_run(experiment_id=store.experiment_id) as mine:
            keras_net.train(keras_net.build(X, params, seed=4), X, y, params, seed=4, verbose=True)
        with mlflow.start_run(experiment_id=store.experiment_id) as own:
            # as a watched fit called it before it made its own batches
            _keras_own_fit(X, y, params, 4, 1, steps_per_epoch=keras_net.steps_per_epoch(len(X), params))
    finally:
        mlflow.keras.autolog(disable=True)
    client = store.client
    ours, theirs = (client.get_run(run.info.run_id).data for run in (mine, own))
    # Keras numbers the optimizers a process builds: the second network's is adam_1.
    assert ours.params | {"optimizer_name": "adam"} == theirs.params | {"optimizer_name": "adam"}
    assert {"batch_size", "validation_split", "shuffle", "steps_per_epoch"} <= ours.params.keys()
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= ours.metrics.keys()
    for key in theirs.metrics:
        curve = [m.value for m in client.get_metric_history(mine.info.run_id, key)]
        assert curve == [m.value for m in client.get_metric_history(own.info.run_id, key)], key


def test_tensorflow_runs_these_small_networks_on_one_thread_unless_told_otherwise(monkeypatch):
    from psystock.models import keras_net

    for name in keras_net.TENSORFLOW_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "4")  # the user's own
    keras_net.quiet_tensorflow()
    assert os.environ["TF_NUM_INTEROP_THREADS"] == "1"
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "4"
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"


def test_a_keras_network_is_traced_for_training_once_for_all_its_folds(monkeypatch):
    """Keras builds the compiled metrics inside the first training step's trace unless they exist,
    and TensorFlow then traces the step a second time, half a second per network: a trainer's
    network is traced once for every fold it fits (the step's Python body runs once per trace),
    in a loop of psystock's own, not through Keras's fit nor its train_step."""
    import keras

    from psystock.models import keras_net

    traces = []
    quiet_step = keras_net._quiet_step

    def traced(model, rows, labels):
        traces.append(rows)
        return quiet_step(model, rows, labels)

    def refused(*args, **kwargs):
        raise AssertionError("a quiet fit went through Keras's fit, or its train_step and its metrics")

    monkeypatch.setattr(keras_net, "_quiet_step", traced)
    monkeypatch.setattr(keras.Sequential, "fit", refused)
    monkeypatch.setattr(keras.Sequential, "train_step", refused)
    X, y = learnable(240)
    trainer = keras_net.Trainer(get_family("keras").params(defaults("keras") | {"epochs": 2}), seed=3)
    for rows in (120, 200, 236):  # 114, 190 and 224 rows kept: a last batch of 18, of 30, none short
        trainer(X.iloc[:rows], y.iloc[:rows])
    assert len(traces) == 1


@pytest.mark.parametrize(
    "adam",
    [{"weight_decay": 0.01}, {"amsgrad": True}, {"clipnorm": 1.0}],
    ids=["weight-decay", "amsgrad", "clipped"],
)
def test_a_quiet_fit_with_more_than_a_plain_adam_takes_kerass_own_step_and_learns_what_fit_does(adam):
    """The quiet step computes a plain Adam's update itself; an optimizer with more to it (decay,
    AMSGrad, clipping) must step through Keras's own train_step, and learn what Keras's fit does."""
    from psystock.models import keras_net

    X, y = learnable(150)
    params = get_family("keras").params(defaults("keras") | {"epochs": 2, "batch_size": 16})
    quiet = _network(X, params, seed=5, adam=adam)
    assert not keras_net._plain_adam(quiet.optimizer, quiet.trainable_weights)
    keras_net.train(quiet, X, y, params, seed=5)
    own, _ = _keras_own_fit(X, y, params, seed=5, validation_freq=params.epochs, adam=adam)
    for mine, theirs in zip(quiet.weights, own.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_a_trainers_later_fits_leave_tensorflows_kernel_cache_alone(monkeypatch):
    """Setting TensorFlow's seed clears its kernel cache, and every traced function is then
    prepared anew (a tenth of a second per fit): after its first fit, a trainer's fits on rows it
    has seen set none, and learn what a new network does (see the reuse test above)."""
    from tensorflow.python import pywrap_tfe

    from psystock.models import keras_net

    X, y = learnable(240)
    trainer = keras_net.Trainer(get_family("keras").params(defaults("keras") | {"epochs": 2}), seed=3)
    for rows in (120, 200):
        trainer(X.iloc[:rows], y.iloc[:rows])
    cleared: list[object] = []
    monkeypatch.setattr(pywrap_tfe, "TFE_ContextClearCaches", cleared.append)
    for rows in (120, 200):
        keras_net.predict_proba(trainer(X.iloc[:rows], y.iloc[:rows]), X.iloc[200:])
    assert cleared == []
