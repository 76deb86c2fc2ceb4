"""Hyperopt TPE over a family's search space, scored by the protocol's cross-validation.

The objective fits through the family's own ``fit``/``predict_proba`` -- the
same code as the training steps. It runs where hyperopt sends it: in this
process with ``Trials``, or on Spark workers with ``SparkTrials``. So it is a
picklable object, logs its own trial (``log_trial``, e.g. a child run created
with ``MlflowClient``) and returns everything about the trial in hyperopt's
result dict. The driver sees each finished trial through hyperopt's
early-stop hook, which reports progress and applies ``early_stop``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from hyperopt import JOB_STATE_DONE, JOB_STATE_ERROR, STATUS_FAIL, STATUS_OK, Trials, fmin, tpe
from hyperopt.early_stop import no_progress_loss

from psystock import PsystockError, names, this_process
from psystock.models import Family, format_hyperparameters
from psystock.protocol import cross_validate, cv_answers
from psystock.scores import score
from psystock.training import family_candidate
from psystock.validation import check_search, check_seed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialResult:
    number: int  # hyperopt's trial id + 1: the order TPE proposed it in
    params: dict[str, Any]
    fold_scores: list[float]
    loss: float
    seconds: float
    error: str | None = None
    process: str = ""  # host:pid of the process that ran it (a Spark worker's, with SparkTrials)
    # Its answers on each validation fold: scored again, they give the tuned model's every CV score.
    fold_answers: list[np.ndarray] = field(default_factory=list, repr=False)

    @property
    def mean_score(self) -> float:
        return float(np.mean(self.fold_scores)) if self.fold_scores else float("nan")


@dataclass
class TuningResult:
    best: TrialResult
    trials: list[TrialResult] = field(default_factory=list)
    stopped_early: bool = False

    def table(self, metric: str, run_ids: Mapping[int, str]) -> pd.DataFrame:
        """One row per trial in proposal order: its loss, mean CV ``metric``, seconds, the run it
        was logged as (``run_ids``: trial number to run id) and the parameters it sampled."""
        return pd.DataFrame(
            {
                "trial": t.number,
                "loss": t.loss,
                names.cv_mean(metric): t.mean_score,
                "seconds": t.seconds,
                "run_id": run_ids.get(t.number, ""),
                **t.params,
            }
            for t in self.trials
        )

    def best_params(self) -> dict[str, Any]:
        """The best trial's parameters as the tuning run's params: ``best_<name>``."""
        return {f"{names.BEST_PARAM_PREFIX}{k}": v for k, v in self.best.params.items()}

    def best_metrics(self, metric: str) -> dict[str, float]:
        return {names.best_cv(metric): self.best.mean_score, "best_loss": self.best.loss, "trials": len(self.trials)}

    def best_tags(self, family: Family[Any], run_ids: Mapping[int, str]) -> dict[str, str]:
        """The best parameters as ``train`` takes them, the best trial's run, and whether the search stopped early."""
        return {
            names.TAG_HYPERPARAMETERS: format_hyperparameters(family, family.params(self.best.params)),
            names.TAG_BEST_TRIAL_RUN: run_ids.get(self.best.number, ""),
            names.TAG_STOPPED_EARLY: str(self.stopped_early).lower(),
        }


@dataclass(frozen=True)
class SearchSettings:
    """How a search runs. ``early_stop``: stop after this many trials without a
    better loss (0: never). ``timeout``: seconds (0: none). ``spark_master``:
    run trials through ``SparkTrials`` on that master, ``parallelism`` at a time
    (0: Spark's default); empty: one after another in this process.
    Invalid settings cannot be built: the constructor raises a PsystockError."""

    max_evals: int
    seed: int
    early_stop: int = 0
    timeout: float = 0.0
    parallelism: int = 0
    spark_master: str = ""

    def __post_init__(self) -> None:
        check_seed(self.seed)
        check_search(self.max_evals, self.early_stop, self.timeout, self.parallelism, self.spark_master)

    @property
    def backend(self) -> str:
        """Where the trials run, in words: the tuning run's ``psystock.trials_backend`` tag."""
        if not self.spark_master:
            return "Trials (sequential)"
        return f"SparkTrials {self.spark_master}, parallelism {self.parallelism or 'default'}"


def flatten(sample: dict[str, Any]) -> dict[str, Any]:
    """Merge nested choices (``{"penalty": {"solver": ..., "l1_ratio": ...}}``) into one level."""
    flat: dict[str, Any] = {}
    for key, value in sample.items():
        if isinstance(value, dict):
            flat.update(flatten(value))
        else:
            flat[key] = value.item() if isinstance(value, np.generic) else value
    return flat


def cv_scores(
    family: Family[Any], X: Any, y: Any, params: Any, split: str, n_folds: int, seed: int, metric: str
) -> list[float]:
    """``metric`` of the family with ``params`` on each validation fold: the folds every model is
    cross-validated on (:func:`psystock.protocol.cross_validate`)."""
    candidate = family_candidate(family, params, seed)
    return [fold[metric] for fold in cross_validate(candidate, X, y, split, n_folds, only=metric)]


@dataclass
class Objective:
    """The loss of one sampled point: how far its mean CV ``metric`` is from the best
    (``1 - mean`` for scores that top out at 1). Picklable, so it can run on a Spark worker.

    The sample fills the family's parameters over their defaults.
    The result names the process it ran in, for the trial's run.
    """

    family: Family[Any]
    X: Any
    y: Any
    split: str
    n_folds: int
    seed: int
    metric: str

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        typed = self.family.params(flatten(sample))
        params = dataclasses.asdict(typed)
        started = time.perf_counter()
        try:
            candidate = family_candidate(self.family, typed, self.seed)
            where = (self.X, self.y, self.split, self.n_folds)
            answers = list(cv_answers(candidate, *where))
            folds = cross_validate(candidate, *where, only=self.metric, answers=answers)
            scores, error = [fold[self.metric] for fold in folds], None
        except (ValueError, PsystockError) as exc:  # an invalid point of the space
            scores, answers, error = [], [], str(exc).splitlines()[0]
        loss = score(self.metric).loss(float(np.mean(scores))) if scores else math.inf
        seconds = time.perf_counter() - started
        return {
            "loss": loss,
            "status": STATUS_FAIL if error else STATUS_OK,
            "params": params,
            "fold_scores": scores,
            "fold_answers": answers,
            "seconds": seconds,
            "error": error,
            "process": this_process(),
        }


class _Progress:
    """hyperopt's early-stop hook, called on the driver after each round: reports
    every newly finished trial once, in proposal order, and applies ``early_stop``
    through hyperopt's own ``no_progress_loss``."""

    def __init__(self, max_evals: int, early_stop: int, on_trial: Callable[[TrialResult], None]):
        self.max_evals = max_evals
        self.early_stop = early_stop
        self.on_trial = on_trial
        self.stop_rule = no_progress_loss(early_stop) if early_stop else None
        self.stop_state: list = []
        self.stopped = False
        self.seen: set[int] = set()
        self.results: list[TrialResult] = []

    def __call__(self, trials: Any, *_: Any) -> tuple[bool, list[Any]]:
        for doc in sorted(trials.trials, key=lambda d: d["tid"]):
            if doc["tid"] in self.seen or doc["state"] not in (JOB_STATE_DONE, JOB_STATE_ERROR):
                continue
            self.seen.add(doc["tid"])
            trial = _trial_result(doc)
            self.results.append(trial)
            self.on_trial(trial)
            best = min(t.loss for t in self.results)
            log.info(
                "trial %d/%d: loss %.4f (best %.4f, %.2f s)%s",
                trial.number,
                self.max_evals,
                trial.loss,
                best,
                trial.seconds,
                f" failed: {trial.error}" if trial.error else "",
            )
            if self.stop_rule and not self.stopped:
                self.stopped, self.stop_state = self.stop_rule(
                    SimpleNamespace(trials=[{"result": {"loss": trial.loss}}]), *self.stop_state
                )
                if self.stopped:
                    log.info("early stop: no better loss in the last %d trials", self.early_stop)
        return self.stopped, []


def _trial_result(doc: dict) -> TrialResult:
    result = doc["result"]
    number = doc["tid"] + 1
    if doc["state"] == JOB_STATE_ERROR or "params" not in result:  # the objective raised
        error = (doc.get("misc") or {}).get("error") or ("error", "the trial raised an exception")
        return TrialResult(number, {}, [], math.inf, 0.0, str(error[-1]).splitlines()[0] or "failed")
    return TrialResult(
        number,
        result["params"],
        result["fold_scores"],
        result["loss"],
        result["seconds"],
        result["error"],
        result.get("process", ""),
        result.get("fold_answers", []),
    )


def _ignore(trial: TrialResult) -> None:
    return None


def tune(
    family: Family[Any],
    X: Any,
    y: Any,
    *,
    split: str,
    n_folds: int,
    metric: str,
    settings: SearchSettings,
    on_trial: Callable[[TrialResult], None] = _ignore,
) -> TuningResult:
    """Minimise the loss of the mean CV ``metric`` over ``family.search_space()`` with TPE.

    The family's defaults fill the parameters the space does not sample. The
    same ``seed`` gives the same sequence of proposed trials (with
    ``SparkTrials``, TPE sees results in the order they finish, so that holds
    for sequential runs only). ``on_trial`` is called on this process for each
    finished trial.
    """
    objective = Objective(family, X, y, split, n_folds, settings.seed, metric)
    progress = _Progress(settings.max_evals, settings.early_stop, on_trial)
    trials = spark_trials(settings) if settings.spark_master else Trials()
    fmin(
        objective,
        family.search_space(),
        algo=tpe.suggest,
        max_evals=settings.max_evals,
        trials=trials,
        rstate=np.random.default_rng(settings.seed),
        early_stop_fn=progress,
        timeout=settings.timeout or None,
        show_progressbar=False,
        return_argmin=False,
    )
    progress(trials)  # trials that finished after hyperopt's last call (a timeout ends the loop first)
    results = sorted(progress.results, key=lambda t: t.number)
    finished = [t for t in results if t.error is None]
    if not finished:
        first = results[0].error if results else "no trial finished before the timeout"
        raise PsystockError(f"all {len(results)} trials failed; first error: {first}")
    return TuningResult(min(finished, key=lambda t: t.loss), results, progress.stopped)


def spark_trials(settings: SearchSettings) -> Any:
    """``SparkTrials`` on ``settings.spark_master``, its workers running this interpreter and this code."""
    from psystock.spark import start_session

    # SparkTrials' task threads cannot inherit job tags from a session they did not create.
    warnings.filterwarnings("ignore", message="Spark session is not provided", category=UserWarning)
    session = start_session(settings.spark_master, "psystock-tune")
    from hyperopt import SparkTrials

    return SparkTrials(parallelism=settings.parallelism or None, spark_session=session)
