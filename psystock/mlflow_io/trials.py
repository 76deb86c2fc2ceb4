"""Tuning trials as light child runs of the tuning run, logged where each trial ran."""

from __future__ import annotations

import time
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from psystock.mlflow_io import names
from psystock.mlflow_io.lifecycle import FAILED, FINISHED, this_process
from psystock.tuning import TrialResult


def trial_run_name(number: int) -> str:
    """``trial_007``: the name of the trial TPE proposed seventh."""
    return f"trial_{number:03d}"


class TrialLogger:
    """Logs each tuning trial as a light child run of the tuning run.

    Three calls per trial (create, one batch, terminate) and nothing heavy:
    no model files, no plots. Needs no active run and pickles without its
    client, so Spark workers log their own trials (to ``tracking_uri``).
    The driver then numbers each run in the order TPE proposed it.
    """

    def __init__(
        self, experiment_id: str, parent_run_id: str, family: str, metric: str, tracking_uri: str | None = None
    ):
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.family = family
        self.metric = metric
        self.tracking_uri = tracking_uri or mlflow.get_tracking_uri()
        self._client: MlflowClient | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(self.tracking_uri)
        return self._client

    def __call__(
        self, params: dict[str, Any], fold_scores: list[float], loss: float, seconds: float, error: str | None
    ) -> str:
        run = self.client.create_run(
            self.experiment_id,
            tags={
                MLFLOW_PARENT_RUN_ID: self.parent_run_id,
                names.TAG_STEP: names.TRIAL_STEP,
                names.TAG_FAMILY: self.family,
                names.TAG_PROCESS: this_process(),
            },
            run_name="trial",
        )
        now = int(time.time() * 1000)
        values = {"loss": loss, "seconds": seconds}
        if fold_scores:
            values[names.cv_mean(self.metric)] = sum(fold_scores) / len(fold_scores)
            values.update({names.cv_fold(self.metric, i): s for i, s in enumerate(fold_scores)})
        metrics = [Metric(k, float(v), now, 0) for k, v in values.items() if abs(v) != float("inf")]
        tags = [RunTag(names.TAG_TRIAL_ERROR, error[:5000])] if error else []
        params_logged = [Param(k, str(v)) for k, v in params.items()]
        self.client.log_batch(run.info.run_id, metrics=metrics, params=params_logged, tags=tags)
        run_id: str = run.info.run_id
        self.client.set_terminated(run_id, FAILED if error else FINISHED)
        return run_id

    def number_trial(self, trial: TrialResult) -> None:
        """Name a finished trial's run by its number (``trial_007``); trials that raised have no run."""
        if trial.run_id:
            tags = [RunTag(names.TAG_TRIAL, str(trial.number)), RunTag(MLFLOW_RUN_NAME, trial_run_name(trial.number))]
            self.client.log_batch(trial.run_id, tags=tags)
