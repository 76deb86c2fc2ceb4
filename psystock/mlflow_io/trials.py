"""Tuning trials as light child runs of the tuning run, logged in the background as they finish.

Against a team server each call is an HTTP round trip (about 45 ms here);
logged inline, three of them per trial would sit between one fit and the
next. :class:`TrialLogger` hands each finished trial to a few background
threads instead, so logging overlaps the next trials' fits, and
:meth:`TrialLogger.flush` waits for all of them before the tuning run ends:
a trial that could not be logged fails the run rather than going missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from psystock import PsystockError, names, tuning
from psystock.mlflow_io.lifecycle import FAILED, FINISHED, active_run, quiet_run_urls
from psystock.mlflow_io.outputs import log_csv
from psystock.models import Family
from psystock.plots import params_figure, tuning_figure
from psystock.tuning import SearchSettings, TrialResult, TuningResult

log = logging.getLogger("psystock.tune")

LOGGING_THREADS = 4  # calls in flight at once: enough to keep up with sub-second trials


def trial_run_name(number: int) -> str:
    """``trial_007``: the name of the trial TPE proposed seventh."""
    return f"trial_{number:03d}"


class TrialLogger:
    """Logs each finished tuning trial as a light child run of the tuning run, in the background.

    Three calls per trial (create with its tags and name, one batch of
    params and metrics, terminate) and nothing heavy: no model files, no
    plots. Call it with each trial as hyperopt reports it (on the driver,
    wherever the trial ran); :meth:`flush` before the tuning run ends.
    """

    def __init__(
        self, experiment_id: str, parent_run_id: str, family: str, metric: str, tracking_uri: str | None = None
    ):
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.family = family
        self.metric = metric
        self.client = MlflowClient(tracking_uri or mlflow.get_tracking_uri())
        self._pool = ThreadPoolExecutor(LOGGING_THREADS, thread_name_prefix="trial-log")
        self._pending: dict[int, Future[str]] = {}

    def __call__(self, trial: TrialResult) -> None:
        """Queue ``trial`` for logging; returns at once."""
        self._pending[trial.number] = self._pool.submit(self.log, trial)

    def log(self, trial: TrialResult) -> str:
        """Log one trial now; its run id."""
        run = self.client.create_run(
            self.experiment_id,
            tags={
                MLFLOW_PARENT_RUN_ID: self.parent_run_id,
                names.TAG_STEP: names.TRIAL_STEP,
                names.TAG_FAMILY: self.family,
                names.TAG_TRIAL: str(trial.number),
                **({names.TAG_PROCESS: trial.process} if trial.process else {}),
            },
            run_name=trial_run_name(trial.number),
        )
        run_id: str = run.info.run_id
        now = int(time.time() * 1000)
        values = {"loss": trial.loss, "seconds": trial.seconds}
        if trial.fold_scores:
            values[names.cv_mean(self.metric)] = trial.mean_score
            values.update({names.cv_fold(self.metric, i): s for i, s in enumerate(trial.fold_scores)})
        metrics = [Metric(k, float(v), now, 0) for k, v in values.items() if abs(v) != float("inf")]
        tags = [RunTag(names.TAG_TRIAL_ERROR, trial.error[:5000])] if trial.error else []
        params = [Param(k, str(v)) for k, v in trial.params.items()]
        self.client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        self.client.set_terminated(run_id, FAILED if trial.error else FINISHED)
        return run_id

    def flush(self) -> dict[int, str]:
        """Wait until every queued trial is logged: trial number -> run id. Raises if any could
        not be logged, naming how many and why."""
        self._pool.shutdown(wait=True)
        errors = {n: f.exception() for n, f in self._pending.items() if f.exception() is not None}
        if errors:
            first = next(iter(errors.values()))
            raise PsystockError(
                f"{len(errors)} of {len(self._pending)} trials could not be logged to "
                f"{self.client.tracking_uri}: {type(first).__name__}: {str(first).strip().splitlines()[0]}"
            )
        return {n: f.result() for n, f in self._pending.items()}


def log_search(result: TuningResult, family: Family[Any], metric: str, run_ids: Mapping[int, str]) -> None:
    """On the active (tuning) run: the best trial's parameters, scores and tags, the table of
    every trial (``tuning/trials.csv``) and its two plots."""
    mlflow.log_params(result.best_params())
    mlflow.log_metrics(result.best_metrics(metric))
    mlflow.set_tags(result.best_tags(family, run_ids))
    table = result.table(metric, run_ids)
    losses = tuning_figure(table["loss"].tolist(), f"{family.name}: TPE trials", f"loss (1 - mean CV {metric})")
    mlflow.log_figure(losses, names.plot("tuning_loss"))
    mlflow.log_figure(
        params_figure(table, list(result.best.params), f"{family.name}: parameters vs loss"),
        names.plot("tuning_params"),
    )
    log_csv(table, names.artifact(names.TUNING_DIR, names.TRIALS_FILE))


def search(
    family: Family[Any], X: Any, y: Any, *, split: str, n_folds: int, metric: str, settings: SearchSettings
) -> TuningResult:
    """:func:`psystock.tuning.tune` on the active run: each trial a child run of it as it finishes,
    then the search itself logged on it (:func:`log_search`)."""
    parent = active_run()
    mlflow.set_tags({names.TAG_FAMILY: family.name, names.TAG_TRIALS_BACKEND: settings.backend})
    log.info(
        "tuning %s: up to %d trials, %s by %d-fold %s CV on the %d development rows, %s",
        family.name,
        settings.max_evals,
        metric,
        n_folds,
        split,
        len(y),
        settings.backend,
    )
    logger = TrialLogger(parent.info.experiment_id, parent.info.run_id, family.name, metric)
    with quiet_run_urls():
        result = tuning.tune(
            family, X, y, split=split, n_folds=n_folds, metric=metric, settings=settings, on_trial=logger
        )
        log.info("logging the last of %d trial runs", len(result.trials))
        log_search(result, family, metric, logger.flush())
    return result
