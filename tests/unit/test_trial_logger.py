"""Trial child runs, as a Spark worker creates them: no active run, a pickled logger."""

import pickle

import mlflow

from psystock.mlflow_io import names
from psystock.mlflow_io.trials import TrialLogger
from psystock.tuning import TrialResult


def test_a_pickled_logger_creates_linked_light_child_runs(store):
    parent = store.client.create_run(store.experiment_id).info.run_id
    logger = TrialLogger(store.experiment_id, parent, "logreg", "mcc", tracking_uri=store.uri)
    first = logger({"C": 0.5, "solver": "lbfgs"}, [0.5, 0.7], 0.4, 0.02, None)  # the driver's client exists now
    on_worker = pickle.loads(pickle.dumps(logger))
    second = on_worker({"C": 2.0, "solver": "saga"}, [], float("inf"), 0.01, "solver saga failed")
    logger.number_trial(TrialResult(2, {}, [], float("inf"), 0.01, "failed", second))

    runs = {
        r.info.run_id: r
        for r in store.client.search_runs([store.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    }
    assert set(runs) == {first, second}
    ok, failed = runs[first], runs[second]
    assert ok.info.status == "FINISHED" and failed.info.status == "FAILED"
    assert ok.data.params == {"C": "0.5", "solver": "lbfgs"}
    assert ok.data.metrics == {
        "loss": 0.4,
        "seconds": 0.02,
        "cv_mcc_mean": 0.6,
        "cv_mcc_fold_0": 0.5,
        "cv_mcc_fold_1": 0.7,
    }
    assert failed.data.tags["error"] == "solver saga failed" and "loss" not in failed.data.metrics
    assert failed.info.run_name == "trial_002" and failed.data.tags[names.TAG_TRIAL] == "2"
    assert not mlflow.artifacts.list_artifacts(run_id=first)  # nothing heavy
