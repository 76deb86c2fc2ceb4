"""The reference's small Keras network: Dense(relu) -> BatchNormalization -> Dense(sigmoid).

TensorFlow is imported inside the functions, so steps of other families do
not pay for it.
"""

from __future__ import annotations

import os

import numpy as np
from hyperopt import hp

from psystock import PsystockError
from psystock.models import FAMILIES, Family, requirements


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter hides the step's own progress lines;
    # oneDNN's reordered floating-point sums would make results seed-independent noise.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def _keras(seed: int):
    _quiet_tensorflow()
    import keras
    import tensorflow as tf

    # Same seed, same weights, same shuffles, same floating-point order.
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return keras


def build(n_features: int, params: dict, seed: int):
    keras = _keras(seed)
    layers = [keras.Input(shape=(n_features,))]
    for _ in range(int(params.get("layers", 1))):
        layers.append(keras.layers.Dense(int(params["units"]), activation="relu"))
        layers.append(keras.layers.BatchNormalization())
        if float(params.get("dropout", 0.0)) > 0:
            layers.append(keras.layers.Dropout(float(params["dropout"])))
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(params["learning_rate"])),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def fit(X, y, params: dict, seed: int, verbose: bool = False, log_dir: str | None = None):
    for name in ("units", "epochs", "batch_size"):
        if int(params[name]) < 1:
            raise PsystockError(f"{name} must be at least 1, got {params[name]}")
    if not 0 <= float(params["validation_split"]) < 1:
        raise PsystockError(f"validation_split must be in [0, 1), got {params['validation_split']}")
    model = build(X.shape[1], params, seed)
    import keras

    callbacks = [keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False)] if log_dir else []
    history = model.fit(
        as_model_input(X),
        np.asarray(y, dtype="float32"),
        epochs=int(params["epochs"]),
        batch_size=int(params["batch_size"]),
        validation_split=float(params["validation_split"]),
        shuffle=True,
        verbose=2 if verbose else 0,
        callbacks=callbacks,
    )
    if log_dir:
        from psystock.plots import history_figure

        history_figure(history.history, "Keras training").savefig(os.path.join(log_dir, "training_curves.png"))
    return model


def predict_proba(model, X) -> np.ndarray:
    return model.predict(as_model_input(X), verbose=0).ravel()


def as_model_input(X) -> np.ndarray:
    """Keras models take (and their MLflow signature describes) a float32 tensor."""
    return np.asarray(X, dtype="float32")


def search_space() -> dict:
    return {
        "units": hp.choice("units", [8, 16, 36, 64]),
        "layers": hp.choice("layers", [1, 2]),
        "dropout": hp.uniform("dropout", 0.0, 0.5),
        "learning_rate": hp.loguniform("learning_rate", np.log(1e-4), np.log(1e-2)),
        "batch_size": hp.choice("batch_size", [16, 32, 64]),
        "epochs": hp.choice("epochs", [10, 20, 40]),
        "validation_split": 0.0,
    }


FAMILY = Family(
    info=FAMILIES["keras"],
    params=("units", "learning_rate", "epochs", "batch_size", "validation_split"),
    fit=fit,
    predict_proba=predict_proba,
    search_space=search_space,
    autolog_flavor="keras",
    # mlflow.keras.log_model fails to save an input example (mlflow issue 16183);
    # the tensorflow flavor saves Keras 3 models with one.
    model_flavor="tensorflow",
    prepare=_quiet_tensorflow,
    pip_requirements=requirements("tensorflow-cpu", "keras"),
    as_model_input=as_model_input,
)
