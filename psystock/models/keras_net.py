"""The reference's small Keras network: Dense(relu) -> BatchNormalization -> Dense(sigmoid).

TensorFlow is imported inside the functions, so steps of other families do
not pay for it.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import warnings
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from hyperopt import hp

from psystock import PsystockError
from psystock.models import BUILT_IN, Family, needs_scaling, requirements

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class KerasParams:
    """The network and its training; the defaults are the reference's (one hidden layer, no dropout)."""

    units: int = 36  # units of each hidden layer
    layers: int = 1  # hidden Dense → BatchNormalization blocks
    dropout: float = 0.0  # dropout after each block, in [0, 1)
    learning_rate: float = 0.001  # Adam's learning rate
    epochs: int = 20  # training epochs
    batch_size: int = 32  # rows per gradient step
    validation_split: float = 0.05  # the last share of training rows Keras holds out per epoch


# TensorFlow's settings for these networks, before its runtime starts; a value the user set is kept.
TENSORFLOW_SETTINGS = {
    # Its C++ start-up chatter hides the step's own progress lines.
    "TF_CPP_MIN_LOG_LEVEL": "3",
    # oneDNN's reordered floating-point sums would make results seed-independent noise.
    "TF_ENABLE_ONEDNN_OPTS": "0",
    # Ops this small cost more to hand between threads than they gain: one thread each spends a
    # ninth less CPU on a Keras tuning and leaves the other core to the steps beside it, with the
    # same numbers to the digit. Larger networks may set more.
    "TF_NUM_INTEROP_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
}


def quiet_tensorflow() -> None:
    """Put :data:`TENSORFLOW_SETTINGS` in the environment, where the user has not set them."""
    for name, value in TENSORFLOW_SETTINGS.items():
        os.environ.setdefault(name, value)


def _keras(seed: int) -> Any:
    quiet_tensorflow()
    import keras
    import tensorflow as tf

    # Same seed, same weights, same shuffles, same floating-point order.
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    # A step reports through logging, with its ticker and name on every line. Keras's own progress
    # bars (a predict MLflow makes to check a logged model's example, say) would write raw
    # terminal codes to the step's output: sent to logging instead, and kept to its warnings.
    keras.config.disable_interactive_logging()
    logging.getLogger("absl").setLevel(logging.WARNING)
    return keras


def build(X: np.ndarray, params: KerasParams, seed: int) -> Any:
    """The network for features like ``X``, compiled, its weights drawn from ``seed``: on features
    other than 0/1 flags it opens with a ``Normalization`` layer (adapted by :func:`train`), so the
    logged model takes raw columns."""
    keras = _keras(seed)
    layers = [keras.Input(shape=(X.shape[1],))]
    if needs_scaling(X):
        layers.append(keras.layers.Normalization())
    for _ in range(params.layers):
        layers.append(keras.layers.Dense(params.units, activation="relu"))
        layers.append(keras.layers.BatchNormalization())
        if params.dropout > 0:
            layers.append(keras.layers.Dropout(params.dropout))
    layers.append(keras.layers.Dense(1, activation="sigmoid"))
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params.learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
        # A watched fit's batches several per call into TensorFlow: the same updates in the same
        # order (the predictions are identical), a third less time on these small batches. A quiet
        # fit has a loop of its own (_fit_quietly).
        steps_per_execution=32,
    )
    model.optimizer.build(model.trainable_variables)
    # Keras builds its compiled metrics inside the first training step's trace, and having made
    # variables there, TensorFlow traces that step a second time: half a second for each network.
    # Built here on one row shaped like the labels and answers, they are traced once; fit resets them.
    model.compute_metrics(None, np.zeros(1, "float32"), np.zeros((1, 1), "float32"))
    model.reset_metrics()
    return model


def train(
    model: Any,
    X: Any,
    y: Any,
    params: KerasParams,
    seed: int,
    verbose: bool = False,
    callbacks: list[Any] | None = None,
) -> Any:
    """Fit a network as :func:`build` left it: adapt its normalisation to ``X``, then train with
    shuffles drawn from ``seed`` (whatever drew from the random state before). Returns the history
    of a watched fit, and None for a quiet one.

    The last ``validation_split`` share of the rows is held out of training either way, and every
    epoch's batches are Keras's own, in its order (:func:`_keras_order`). A watched fit
    (``verbose``: a step's final fit, whose curves are logged, with ``callbacks``) runs Keras's
    epochs over them, made once (:func:`epoch_of_batches`), the held-out rows scored after each;
    Keras's own ``fit`` on the rows would build a new data iterator over the training rows and
    another over the held-out ones every epoch, a third of the fit on these networks. A quiet fit
    (cross-validation's folds, tuning's trials) runs every epoch's batches through Keras's own
    training step in one call into TensorFlow (:func:`_fit_quietly`): the same updates in the same
    order, without Keras's epoch loop, callbacks and data iterators, nor an evaluation whose
    scores nobody reads. ``tests/unit/test_models.py`` checks both against Keras's own ``fit``:
    the weights, the answers and a watched fit's curves, to the digit."""
    import keras

    features = as_model_input(X)
    if isinstance(model.layers[0], keras.layers.Normalization):
        model.layers[0].adapt(features)  # on every row, the held-out ones too, as before
    labels = np.asarray(y, dtype="float32")
    kept = kept_rows(len(features), params)
    # No seed is set for the fit itself: nothing in it draws one (the order is drawn, and dropout
    # draws from the network's own state), and setting TensorFlow's seed clears its kernel cache,
    # so that every traced function is prepared anew, a tenth of a second for each fit.
    if not verbose:
        if callbacks:
            raise ValueError("a quiet fit runs no callbacks: watch the fit (verbose) to call them")
        _fit_quietly(model, features[:kept], labels[:kept], params, seed)
        return None
    epoch = epoch_of_batches(features[:kept], labels[:kept], params, seed)
    held_out = _in_batches(features[kept:], labels[kept:], params.batch_size) if kept < len(features) else None
    with warnings.catch_warnings():
        # The arguments autologging records are Keras's own fit's on these rows; the batches are
        # already shuffled, as Keras would shuffle them.
        warnings.filterwarnings("ignore", message="`shuffle=True` was passed, but will be ignored")
        return model.fit(
            epoch,
            epochs=params.epochs,
            batch_size=params.batch_size,
            validation_split=params.validation_split,
            validation_data=held_out,
            shuffle=True,
            verbose=0,
            callbacks=[*(callbacks or []), epoch_report(params.epochs)],
            steps_per_epoch=steps_per_epoch(len(features), params),
        )


def epoch_report(epochs: int) -> Any:
    """A callback that logs each epoch's curves as a line of the step's progress."""
    import keras

    class EpochReport(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            curves = ", ".join(f"{name} {value:.4f}" for name, value in (logs or {}).items())
            log.info("epoch %d/%d: %s", epoch + 1, epochs, curves)

    return EpochReport()


def epoch_of_batches(features: np.ndarray, labels: np.ndarray, params: KerasParams, seed: int) -> Any:
    """Every batch of an epoch of a fit on these rows, in the order Keras's own ``fit`` feeds them,
    as one finite ``tf.data`` dataset: Keras (3.15) shuffles numpy rows inside a new data iterator
    each epoch, and with its seed set that draws the same order every epoch (:func:`_keras_order`)."""
    order = _keras_order(len(features), seed)
    return _in_batches(features[order], labels[order], params.batch_size)


# Each network's quiet training, traced once for all the fits it makes (see _fit_quietly).
_training: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _fit_quietly(model: Any, features: np.ndarray, labels: np.ndarray, params: KerasParams, seed: int) -> None:
    """``params.epochs`` epochs of the rows in Keras's order, ``batch_size`` at a time (an epoch's
    last batch shorter), each batch one training step (:func:`_quiet_step`), all in one call into
    TensorFlow: a loop over the steps, each slicing its batch from the shuffled rows.

    These are the updates Keras's ``fit`` makes, in its order, with neither its data iterators nor
    its ``steps_per_execution`` loop around each step (a fit here costs about 40% less CPU). The
    function takes the rows, the batch size and the epochs as tensors, so a network is traced
    once for all the folds it fits, whatever their rows."""
    import tensorflow as tf

    order = _keras_order(len(features), seed)
    model.reset_metrics()  # as fit does at an epoch's start; nobody reads a quiet fit's
    rows, answers = tf.constant(features[order]), tf.constant(labels[order])
    _training_of(model, features.shape[1])(rows, answers, tf.constant(params.batch_size), tf.constant(params.epochs))


def _training_of(model: Any, columns: int) -> Any:
    import tensorflow as tf

    train = _training.get(model)
    if train is None:
        network = weakref.ref(model)  # the traced function must not keep the network alive

        def epochs(rows: Any, labels: Any, batch_size: Any, count: Any) -> Any:
            total = tf.shape(rows)[0]
            per_epoch = (total + batch_size - 1) // batch_size

            def step(done: Any) -> Any:
                start = (done % per_epoch) * batch_size
                end = tf.minimum(start + batch_size, total)
                _quiet_step(network(), rows[start:end], labels[start:end])
                return (done + 1,)

            # One step after another: each reads the weights the one before wrote.
            steps = per_epoch * count
            (done,) = tf.while_loop(lambda done: done < steps, step, (tf.constant(0),), parallel_iterations=1)
            return done

        signature = [
            tf.TensorSpec([None, columns], tf.float32),
            tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.int32),
        ]
        # As for inference: nothing in it for autograph to convert (it would leave a file behind).
        train = tf.function(epochs, input_signature=signature, autograph=False)
        _training[model] = train
    return train


def _quiet_step(model: Any, rows: Any, labels: Any) -> None:
    """One of Keras's training steps (its ``train_step``) without the metrics it keeps, which
    nobody reads of a quiet fit: the same loss, gradients and updates in the same order, each
    update as Keras's ``Adam.update_step`` computes it, but the step's scale of the learning rate
    computed once for all the variables rather than once for each. A fifth less CPU for each fit
    (fewer operations to trace and to run), and the same weights to the digit
    (``tests/unit/test_models.py``). An optimizer other than :func:`build`'s plain Adam takes
    Keras's own ``train_step``."""
    import tensorflow as tf

    adam, weights = model.optimizer, model.trainable_weights
    if not _plain_adam(adam, weights):
        model.train_step((rows, labels))
        return
    with tf.GradientTape() as tape:
        answers = model(rows, training=True)
        loss = model._compute_loss(x=rows, y=labels, y_pred=answers, sample_weight=None, training=True)
    gradients = tape.gradient(loss, weights)
    step = tf.cast(adam.iterations + 1, tf.float32)
    beta_1_power = tf.pow(tf.cast(adam.beta_1, tf.float32), step)
    beta_2_power = tf.pow(tf.cast(adam.beta_2, tf.float32), step)
    alpha = tf.cast(adam.learning_rate, tf.float32) * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    for gradient, weight in zip(gradients, weights, strict=True):
        index = adam._get_variable_index(weight)
        m, v = adam._momentums[index].value, adam._velocities[index].value
        m.assign_add((gradient - m) * (1 - adam.beta_1))
        v.assign_add((tf.square(gradient) - v) * (1 - adam.beta_2))
        weight.value.assign_sub((m * alpha) / (tf.sqrt(v) + adam.epsilon))
    adam.iterations.assign_add(1)


def _plain_adam(optimizer: Any, weights: list[Any]) -> bool:
    """Adam on float32 ``weights`` with nothing of Keras's around its update: no weight decay,
    clipping, moving average, loss scale, accumulated gradients, AMSGrad or constraints."""
    import keras

    return (
        type(optimizer) is keras.optimizers.Adam
        and not optimizer.amsgrad
        and optimizer.weight_decay is None
        and optimizer.clipnorm is None
        and optimizer.clipvalue is None
        and optimizer.global_clipnorm is None
        and not optimizer.use_ema
        and optimizer.loss_scale_factor is None
        and not optimizer.gradient_accumulation_steps
        and all(weight.dtype == "float32" and weight.constraint is None for weight in weights)
    )


@functools.lru_cache(maxsize=64)
def _keras_order(rows: int, seed: int) -> np.ndarray:
    """The order Keras's own ``fit`` shuffles ``rows`` numpy rows in with ``seed`` set: one
    permutation of them, whatever the batch size. Cached, as every trial of a tuning fits the same
    folds with the same seed, and Keras builds a data pipeline to draw it."""
    import keras
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    keras.utils.set_random_seed(seed)
    positions = np.arange(rows, dtype="float32")  # rows and labels alike, as fit hands them over
    shuffled = ArrayDataAdapter(positions[:, None], positions, batch_size=32, shuffle=True).get_tf_dataset()
    order = np.concatenate([labels_of_batch.numpy() for _, labels_of_batch in shuffled]).astype(int)
    order.flags.writeable = False
    return order


def _in_batches(features: np.ndarray, labels: np.ndarray, size: int) -> Any:
    """The rows in order, ``size`` at a time, the last batch shorter: a ``tf.data`` dataset whose
    iterator costs next to nothing to make (Keras's array adapter builds a pipeline for each)."""
    import tensorflow as tf

    whole = len(features) - len(features) % size
    batches = tf.data.Dataset.from_tensor_slices(
        (features[:whole].reshape(-1, size, features.shape[1]), labels[:whole].reshape(-1, size))
    )
    if whole < len(features):
        batches = batches.concatenate(tf.data.Dataset.from_tensors((features[whole:], labels[whole:])))
    return batches


def kept_rows(rows: int, params: KerasParams) -> int:
    """The training rows Keras keeps of ``rows`` when it holds out the last ``validation_split``."""
    return math.floor(rows * (1.0 - params.validation_split)) if params.validation_split else rows


def steps_per_epoch(rows: int, params: KerasParams) -> int:
    """The batches of an epoch on ``rows`` training rows, less the ``validation_split`` share, as
    Keras counts them. Told this, a watched fit makes one iterator over the data per epoch, not
    two (Keras 3.15 throws a second away at each epoch's end): the same batches, a tenth less time."""
    return math.ceil(kept_rows(rows, params) / params.batch_size)


def check_params(params: KerasParams) -> None:
    for name in ("units", "layers", "epochs", "batch_size"):
        if getattr(params, name) < 1:
            raise PsystockError(f"{name} must be at least 1, got {getattr(params, name)}")
    if not 0 <= params.validation_split < 1:
        raise PsystockError(f"validation_split must be in [0, 1), got {params.validation_split}")
    if not 0 <= params.dropout < 1:
        raise PsystockError(f"dropout must be in [0, 1), got {params.dropout}")
    if params.learning_rate <= 0:
        raise PsystockError(f"learning_rate must be > 0, got {params.learning_rate}")


class Trainer:
    """Fits of one set of parameters that share one compiled network.

    Compiling and tracing a network costs a second or two, as much as training
    it on a fold; a trainer pays that once for all its fits (cross-validation's
    folds, then the fit on the whole development period). Before each fit the
    network's variables (its weights, and the state its dropout draws from) and
    the optimizer's are put back as :func:`build` made them, so every fit is the
    one a new trainer would make
    (``tests/unit/test_models.py`` checks it). The model a fit returns is the
    one the next fit retrains: answer with it first. Networks that normalise
    their inputs are built afresh for every fit: a ``Normalization`` layer's
    adapted statistics enter the traced functions as constants.
    """

    def __init__(self, params: KerasParams, seed: int):
        check_params(params)
        self.params, self.seed = params, seed
        self._model: Any = None
        self._initial: tuple[list[Any], list[Any]] = ([], [])

    def __getstate__(self) -> dict[str, Any]:  # pickled to a Spark worker before any fit
        return {**self.__dict__, "_model": None, "_initial": ([], [])}

    def __call__(self, X: pd.DataFrame, y: pd.Series, verbose: bool = False, log_dir: str | None = None) -> Any:
        features = as_model_input(X)
        if self._model is None or needs_scaling(features):
            self._model = build(features, self.params, self.seed)
            self._initial = (
                [v.numpy() for v in self._model.variables],
                [v.numpy() for v in self._model.optimizer.variables],
            )
        else:
            for variable, value in zip(self._model.variables, self._initial[0], strict=True):
                variable.assign(value)
            for variable, value in zip(self._model.optimizer.variables, self._initial[1], strict=True):
                variable.assign(value)
        import keras

        callbacks = [keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False)] if log_dir else []
        history = train(self._model, features, y, self.params, self.seed, verbose, callbacks)
        if log_dir:
            from psystock.plots import history_figure

            figure = history_figure(history.history, "Keras training")
            figure.savefig(os.path.join(log_dir, "training_curves.png"))
        return self._model


def fit(
    X: pd.DataFrame,
    y: pd.Series,
    params: KerasParams,
    seed: int,
    verbose: bool = False,
    log_dir: str | None = None,
) -> Any:
    """One fit: a new trainer's."""
    return Trainer(params, seed)(X, y, verbose, log_dir)


PREDICT_BATCH = 32  # Keras's batch size for predict when it is given none

# Each network's inference, traced once for any number of rows (see predict_proba).
_inference: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def predict_proba(model: Any, X: Any) -> np.ndarray:
    """The network's probabilities of "up", batch by batch as ``model.predict`` gives them: the same
    32-row batches through the same layers, identical to the digit. One traced function serves
    every batch of any length (predict traces a second one for a shorter last batch, a third of a
    second for each network a fold or trial fits), and no data pipeline is built per call."""
    rows = as_model_input(X)
    infer = _inference_of(model, rows.shape[1])
    batches = [infer(rows[at : at + PREDICT_BATCH]) for at in range(0, len(rows), PREDICT_BATCH)]
    return np.concatenate([np.asarray(batch).ravel() for batch in batches]) if batches else np.empty(0, "float32")


def _inference_of(model: Any, columns: int) -> Any:
    import tensorflow as tf

    infer = _inference.get(model)
    if infer is None:
        network = weakref.ref(model)  # the traced function must not keep the network alive

        def inference(rows: Any) -> Any:
            return network()(rows, training=False)  # type: ignore[misc]  # alive while it is called

        # Nothing in it for autograph to convert, which would write its source to a temporary file
        # that only the interpreter's exit removes, and a forked step never runs that.
        infer = tf.function(inference, input_signature=[tf.TensorSpec([None, columns], tf.float32)], autograph=False)
        _inference[model] = infer
    return infer


def as_model_input(X: Any) -> np.ndarray:
    """Keras models take (and their MLflow signature describes) a float32 tensor."""
    return np.asarray(X, dtype="float32")


def search_space() -> dict[str, Any]:
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
    info=BUILT_IN["keras"],
    params_type=KerasParams,
    fit=fit,
    predict_proba=predict_proba,
    check_params=check_params,
    trainer=Trainer,
    search_space=search_space,
    autolog_flavor="keras",
    # mlflow.keras.log_model fails to save an input example (mlflow issue 16183);
    # the tensorflow flavor saves Keras 3 models with one.
    model_flavor="tensorflow",
    prepare=quiet_tensorflow,
    pip_requirements=requirements("tensorflow-cpu", "keras"),
    as_model_input=as_model_input,
)
