"""Hyperopt TPE over a family's search space, scored by cross-validation.

The objective fits through the family's own ``fit``/``predict_proba`` -- the
same code as the training steps -- and reports each trial to a callback, so
the caller decides how to log it (the tune step: one light child run each).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from hyperopt import STATUS_FAIL, STATUS_OK, Trials, fmin, tpe
from sklearn.metrics import f1_score

from psystock import PsystockError
from psystock.evaluation import cv_folds, predictions
from psystock.models import Family
from psystock.validation import check_max_evals

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialResult:
    number: int
    params: dict[str, Any]
    fold_scores: list[float]
    loss: float
    seconds: float
    error: str | None = None

    @property
    def mean_score(self) -> float:
        return float(np.mean(self.fold_scores)) if self.fold_scores else float("nan")


@dataclass
class TuningResult:
    best: TrialResult
    trials: list[TrialResult] = field(default_factory=list)


def flatten(sample: dict) -> dict:
    """Merge nested choices (``{"penalty": {"solver": ..., "l1_ratio": ...}}``) into one level."""
    flat = {}
    for key, value in sample.items():
        if isinstance(value, dict):
            flat.update(flatten(value))
        else:
            flat[key] = value.item() if isinstance(value, np.generic) else value
    return flat


def cv_scores(family: Family, X, y, params: dict, folds, seed: int) -> list[float]:
    """F1 of the family on each validation fold of ``folds``."""
    scores = []
    for train_idx, valid_idx in folds.split(X, y):
        model = family.fit(X.iloc[train_idx], y.iloc[train_idx], params, seed)
        proba = family.predict_proba(model, X.iloc[valid_idx])
        scores.append(float(f1_score(y.iloc[valid_idx], predictions(proba), zero_division=0)))
    return scores


def tune(
    family: Family,
    X,
    y,
    *,
    split: str,
    n_folds: int,
    max_evals: int,
    seed: int,
    defaults: dict,
    on_trial: Callable[[TrialResult], None] = lambda trial: None,
) -> TuningResult:
    """Minimise ``1 - mean CV F1`` over ``family.search_space()`` with TPE.

    ``defaults`` fills the parameters the space does not sample. The same
    ``seed`` gives the same sequence of trials.
    """
    check_max_evals(max_evals)
    folds = cv_folds(split, n_folds, seed)
    results: list[TrialResult] = []

    def objective(sample: dict) -> dict:
        params = {**defaults, **flatten(sample)}
        started = time.perf_counter()
        try:
            scores = cv_scores(family, X, y, params, folds, seed)
            error = None
        except (ValueError, PsystockError) as exc:  # an invalid point of the space
            scores, error = [], str(exc).splitlines()[0]
        loss = 1.0 - float(np.mean(scores)) if scores else float("inf")
        trial = TrialResult(len(results) + 1, params, scores, loss, time.perf_counter() - started, error)
        results.append(trial)
        on_trial(trial)
        best = min(t.loss for t in results)
        log.info("trial %d/%d: loss %.4f (best %.4f)%s", trial.number, max_evals, loss, best,
                 f" failed: {error}" if error else "")
        return {"loss": loss, "status": STATUS_FAIL if error else STATUS_OK}

    space = family.search_space()
    trials = Trials()
    fmin(objective, space, algo=tpe.suggest, max_evals=max_evals, trials=trials,
         rstate=np.random.default_rng(seed), show_progressbar=False)
    finished = [t for t in results if t.error is None]
    if not finished:
        raise PsystockError(f"all {len(results)} trials failed; first error: {results[0].error}")
    best = min(finished, key=lambda t: t.loss)
    return TuningResult(best, results)
