"""Trial child runs, logged in the background while the search goes on, flushed before tuning ends."""

import mlflow
import pytest

from psystock import PsystockError, names
from psystock.mlflow_io.trials import TrialLogger
from psystock.tuning import TrialResult


def test_queued_trials_become_linked_light_child_runs_once_flushed(store):
    parent = store.client.create_run(store.experiment_id).info.run_id
    logger = TrialLogger(store.experiment_id, parent, "logreg", "mcc", tracking_uri=store.uri)
    logger(TrialResult(1, {"C": 0.5, "solver": "lbfgs"}, [0.5, 0.7], 0.4, 0.02, None, "worker-1:41"))
    logger(TrialResult(2, {"C": 2.0, "solver": "saga"}, [], float("inf"), 0.01, "solver saga failed", "worker-2:7"))
    logger(TrialResult(3, {}, [], float("inf"), 0.0, "the trial raised an exception"))  # hyperopt's own failure
    run_ids = logger.flush()

    assert set(run_ids) == {1, 2, 3}
    runs = {
        r.info.run_id: r
        for r in store.client.search_runs([store.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    }
    assert set(runs) == set(run_ids.values())
    ok, failed, raised = (runs[run_ids[n]] for n in (1, 2, 3))
    assert ok.info.status == "FINISHED" and failed.info.status == raised.info.status == "FAILED"
    assert ok.info.run_name == "trial_001" and ok.data.tags[names.TAG_TRIAL] == "1"
    assert ok.data.tags[names.TAG_PROCESS] == "worker-1:41" and ok.data.tags[names.TAG_FAMILY] == "logreg"
    assert ok.data.params == {"C": "0.5", "solver": "lbfgs"}
    assert ok.data.metrics == {
        "loss": 0.4,
        "seconds": 0.02,
        "cv_mcc_mean": 0.6,
        "cv_mcc_fold_0": 0.5,
        "cv_mcc_fold_1": 0.7,
    }
    assert failed.data.tags["error"] == "solver saga failed" and "loss" not in failed.data.metrics
    assert failed.info.run_name == "trial_002" and failed.data.tags[names.TAG_PROCESS] == "worker-2:7"
    assert names.TAG_PROCESS not in raised.data.tags
    assert not mlflow.artifacts.list_artifacts(run_id=run_ids[1])  # nothing heavy


def test_a_trial_that_cannot_be_logged_fails_the_flush_instead_of_going_missing(store):
    parent = store.client.create_run(store.experiment_id).info.run_id
    logger = TrialLogger("999", parent, "logreg", "mcc", tracking_uri=store.uri)  # no such experiment
    logger(TrialResult(1, {"C": 0.5}, [0.5], 0.5, 0.01))
    with pytest.raises(PsystockError, match=r"^1 of 1 trials could not be logged to sqlite:///.*: MlflowException"):
        logger.flush()
