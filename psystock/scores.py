"""The scores a prediction of up/down days can get, and the one decisions are made by.

Pure functions of truth and predictions. A score is one :class:`Score` record
of :data:`SCORES`: its name, a one-line description, its direction, and the
function that computes it, either from the confusion counts of hard answers
(for many resamples at once, as the bootstrap intervals and the registry gate
need: :func:`resampled`) or from the probabilities. Adding a record makes a
new ``metric`` every step accepts, and the tests iterate over the registry.

The default selection metric is the Matthews correlation coefficient (MCC):
the correlation between the predicted and the actual direction. Every
constant predictor scores exactly 0 on it, always-up included, whatever the
up-rate, and so does a coin; a model must find signal to score above 0. F1,
the reference's metric, rewards always-up with ``2p / (1 + p)`` for an
up-rate ``p`` and so cannot tell a model from a constant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
from numpy.typing import ArrayLike

from psystock import PsystockError

THRESHOLD = 0.5  # a probability of "up" above it predicts up
DEFAULT_METRIC = "mcc"


# tp, fp, fn, tn along the last axis (one row per resample) -> the score of each row.
FromCounts: TypeAlias = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# truth, probabilities of "up" -> the score.
FromProbabilities: TypeAlias = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Score:
    """One score: how to compute it, its direction, and the value a perfect predictor gets.
    Exactly one of ``from_counts`` (a score of hard answers) and ``from_probabilities``."""

    name: str
    description: str
    from_counts: FromCounts | None = None
    from_probabilities: FromProbabilities | None = None
    greater_is_better: bool = True
    best: float = 1.0

    @property
    def needs_probabilities(self) -> bool:
        return self.from_probabilities is not None

    def loss(self, value: float) -> float:
        """How far ``value`` is from the best, >= 0: what tuning minimises."""
        return self.best - value if self.greater_is_better else value - self.best

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a > b if self.greater_is_better else a < b


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (scikit-learn's ``zero_division=0``)."""
    return np.asarray(np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0))


def _mcc(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> np.ndarray:
    return _ratio(tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))


def _balanced_accuracy(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> np.ndarray:
    # scikit-learn averages the recall of the classes present.
    up, down = tp + fn, tn + fp
    present = (up > 0).astype(float) + (down > 0).astype(float)
    return _ratio(_ratio(tp, up) + _ratio(tn, down), present)


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score  # imported here: main checks metric names without scikit-learn

    return float(roc_auc_score(y, p))


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import log_loss

    return float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]))


SCORES = {
    score.name: score
    for score in (
        Score("mcc", "Matthews correlation of predicted and actual direction; 0 for any constant predictor", _mcc),
        Score(
            "balanced_accuracy",
            "mean of the hit rates on up days and on down days; 0.5 for a constant",
            _balanced_accuracy,
        ),
        Score(
            "f1",
            "F1 of 'up' (the reference's metric); always-up scores 2p/(1+p) at up-rate p",
            lambda tp, fp, fn, tn: _ratio(2 * tp, 2 * tp + fp + fn),
        ),
        Score("accuracy", "share of days predicted right", lambda tp, fp, fn, tn: _ratio(tp + tn, tp + fp + fn + tn)),
        Score("precision", "share of predicted up days that went up", lambda tp, fp, fn, tn: _ratio(tp, tp + fp)),
        Score("recall", "share of up days predicted up", lambda tp, fp, fn, tn: _ratio(tp, tp + fn)),
        Score("roc_auc", "area under the ROC curve of the probabilities", from_probabilities=_roc_auc),
        Score(
            "log_loss",
            "cross-entropy of the probabilities",
            from_probabilities=_log_loss,
            greater_is_better=False,
            best=0.0,
        ),
    )
}


def score(name: str) -> Score:
    """The score called ``name``, or a clear error listing them."""
    if name not in SCORES:
        raise PsystockError(f"metric must be one of {', '.join(SCORES)}, got {name!r}")
    return SCORES[name]


def predictions(probabilities: ArrayLike, threshold: float = THRESHOLD) -> np.ndarray:
    """0/1 answers: 1 where the probability of "up" exceeds ``threshold``."""
    return (np.asarray(probabilities, dtype=float).ravel() > threshold).astype(int)


def _confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, ...]:
    """True/false positives/negatives along the last axis (one row per resample)."""
    tp = np.sum((y_true == 1) & (y_pred == 1), axis=-1).astype(float)
    fp = np.sum((y_true == 0) & (y_pred == 1), axis=-1).astype(float)
    fn = np.sum((y_true == 1) & (y_pred == 0), axis=-1).astype(float)
    tn = np.sum((y_true == 0) & (y_pred == 0), axis=-1).astype(float)
    return tp, fp, fn, tn


def compute(name: str, y_true: ArrayLike, probabilities: ArrayLike) -> float:
    """One score of predictions (probabilities of "up", or hard 0/1 answers) against the truth."""
    truth = np.asarray(y_true).astype(int).ravel()
    proba = np.asarray(probabilities, dtype=float).ravel()
    found = score(name)
    if found.from_probabilities is not None:
        return found.from_probabilities(truth, proba)
    assert found.from_counts is not None
    return float(found.from_counts(*_confusion_counts(truth, predictions(proba))))


def available(y_true: ArrayLike, probabilistic: bool) -> list[str]:
    """The scores that mean something here: those needing probabilities only for probabilistic
    predictions, and only when the truth holds both classes."""
    both = len(np.unique(np.asarray(y_true))) == 2
    return [s.name for s in SCORES.values() if not s.needs_probabilities or (probabilistic and both)]


def all_scores(y_true: ArrayLike, probabilities: ArrayLike, probabilistic: bool = True) -> dict[str, float]:
    """Every available score, by name."""
    return {name: compute(name, y_true, probabilities) for name in available(y_true, probabilistic)}


def resampled(name: str, y_true: ArrayLike, probabilities: ArrayLike, indices: np.ndarray) -> np.ndarray:
    """The score on each resample: row ``r`` of ``indices`` picks the days of resample ``r``.

    Scores of hard answers are computed for all resamples at once from their
    confusion counts; probability scores one resample at a time.
    """
    truth = np.asarray(y_true).astype(int).ravel()
    proba = np.asarray(probabilities, dtype=float).ravel()
    found = score(name)
    if found.from_probabilities is not None:
        return np.array([_resample_or_nan(found.from_probabilities, truth[row], proba[row]) for row in indices])
    assert found.from_counts is not None
    return found.from_counts(*_confusion_counts(truth[indices], predictions(proba)[indices]))


def _resample_or_nan(function: FromProbabilities, truth: np.ndarray, proba: np.ndarray) -> float:
    if len(np.unique(truth)) < 2:
        return float("nan")  # ROC AUC needs both classes in the resample
    return function(truth, proba)
