"""Step cache, parallel training and resume, through real `mlflow run . -e main`.

The tests share one tracking store and build on each other in file order:
a cold pipeline, then re-runs that must reuse exactly what did not change.
"""

import os
import re
import shutil
import signal
import subprocess
import time

import mlflow
import pytest
from mlflow.entities import Run

from psystock import names
from tests.helpers.runs import PROJECT, mlflow_run, project_command
from tests.helpers.runs import small_pipeline as small

pytestmark = pytest.mark.integration

TRAININGS = ("train_logreg", "train_xgboost", "train_keras")
ALL = ("fetch_data", "build_features", *TRAININGS, "baselines", "compare", "tune", "register", "report")


def outcomes(result, ok: bool = True) -> dict[str, tuple[str, str]]:
    """The summary main prints: entry point -> (finished|cached|FAILED, run id); cached steps have no time."""
    if ok:
        assert result.returncode == 0, result.output[-4000:]
    return {
        m[0]: (m[1], m[2])
        for m in re.findall(
            r"^  (\w+)\s+(finished|FAILED|cached)\s+run (\w+)(?:  (?:saved )?\d+\.\d s)?$", result.stdout, re.MULTILINE
        )
    }


def ran(result) -> set[str]:
    return {ep for ep, (status, _) in outcomes(result).items() if status == "finished"}


@pytest.fixture
def cold(cold_pipeline):
    assert set(outcomes(cold_pipeline)) == set(ALL)
    assert ran(cold_pipeline) == set(ALL)
    return cold_pipeline


@pytest.fixture
def module_store(pipeline_store):
    return pipeline_store


def test_trainings_overlap_in_time(cold):
    runs = [mlflow.get_run(outcomes(cold)[ep][1]).info for ep in TRAININGS]
    assert max(r.start_time for r in runs) < min(r.end_time for r in runs)


def test_second_run_is_all_cached(module_store, cold):
    warm = mlflow_run(module_store, "main", small(names.STORE))
    assert {ep: status for ep, (status, _) in outcomes(warm).items()} == dict.fromkeys(ALL, "cached")
    # A reused step took no time of its own; the summary says what reusing it saved.
    for ep, (_, run_id) in outcomes(cold).items():
        took = mlflow.get_run(run_id).info
        assert f"cached    run {run_id}  saved {(took.end_time - took.start_time) / 1000:.1f} s" in warm.stdout, ep
    assert f"{len(ALL)} of {len(ALL)} steps reused earlier runs, saving " in warm.stdout
    assert {ep: rid for ep, (_, rid) in outcomes(warm).items()} == {ep: rid for ep, (_, rid) in outcomes(cold).items()}
    # The new pipeline's tree still shows every step, as links to the reused runs.
    links = mlflow.MlflowClient().search_runs(
        [module_store.experiment_id], f"tags.mlflow.parentRunId = '{warm.run_id}'"
    )
    assert {r.data.tags[names.TAG_CACHED_STEP]: r.data.tags[names.TAG_REUSED_RUN] for r in links} == {
        ep: rid for ep, (_, rid) in outcomes(cold).items()
    }
    main = mlflow.get_run(warm.run_id)
    assert main.info.status == "FINISHED"
    assert set(main.data.tags["psystock.cached_steps"].split(",")) == set(ALL)
    assert "tuned_test_mcc" in main.data.metrics


def test_parameter_change_reruns_exactly_the_affected_steps(module_store, cold):
    result = mlflow_run(module_store, "main", small(names.STORE, keras_epochs=2))
    winner_before = mlflow.get_run(outcomes(cold)["compare"][1]).data.tags[names.TAG_WINNER_FAMILY]
    winner_after = mlflow.get_run(outcomes(result)["compare"][1]).data.tags[names.TAG_WINNER_FAMILY]
    expected = {"train_keras", "compare", "register", "report"} | ({"tune"} if winner_after != winner_before else set())
    assert ran(result) == expected
    # Each step that runs says what changed since the newest finished run of it.
    assert re.search(r"train_keras: running \(run \w+\), changed since run \w+: .*epochs 1 -> 2", result.stderr)
    assert re.search(
        r"compare: running \(run \w+\), changed since run \w+: training_runs \(other upstream runs\)$",
        result.stderr,
        re.MULTILINE,
    )


def test_a_failing_training_does_not_hide_the_others(module_store, cold):
    result = mlflow_run(module_store, "main", small(names.STORE, keras_epochs=0))
    assert result.returncode != 0
    summary = outcomes(result, ok=False)
    assert summary["train_keras"][0] == "FAILED"
    assert {summary[ep][0] for ep in ("train_logreg", "train_xgboost", "baselines")} <= {"finished", "cached"}
    assert not {"compare", "tune", "register", "report"} & set(summary)
    assert "train_keras: error: epochs must be at least 1, got 0" in result.stderr
    assert "main: error: step failed: train_keras" in result.stderr
    assert mlflow.get_run(result.run_id).info.status == "FAILED"
    assert mlflow.get_run(summary["train_keras"][1]).info.status == "FAILED"


def test_rerun_forces_named_steps_and_same_seed_gives_the_same_scores(module_store, cold):
    result = mlflow_run(module_store, "main", small(names.STORE, rerun=",".join([*TRAININGS, "tune"])))
    # compare, register and report take the new runs; the data steps and baselines stay cached.
    assert ran(result) == {*TRAININGS, "compare", "tune", "register", "report"}
    assert re.search(r"tune: running \(run \w+\), rerun names it$", result.stderr, re.MULTILINE)
    before, again = outcomes(cold), outcomes(result)
    for step in (*TRAININGS, "tune"):
        assert again[step][1] != before[step][1]
        first, second = (mlflow.get_run(runs[step][1]).data.metrics for runs in (before, again))
        for metric in ("f1_experiment_score", "test_mcc", "cv_mcc_mean", "test_mcc_ci_low", "backtest_sharpe"):
            assert second[metric] == first[metric], (step, metric)  # Keras too: deterministic ops
    assert (
        mlflow.get_run(again["tune"][1]).data.metrics["best_cv_mcc"]
        == mlflow.get_run(before["tune"][1]).data.metrics["best_cv_mcc"]
    )


def test_a_step_whose_run_or_artifact_was_deleted_is_run_again(module_store, cold):
    in_use = outcomes(mlflow_run(module_store, "main", small(names.STORE)))
    mlflow.MlflowClient().delete_run(in_use["compare"][1])  # as from the UI: the run is gone, its files are not
    os.remove(os.path.join(mlflow.get_run(in_use["tune"][1]).info.artifact_uri, names.METRICS_FILE))
    result = mlflow_run(module_store, "main", small(names.STORE))
    assert ran(result) == {"compare", "tune", "register", "report"}
    lacks = f"cache miss: run {in_use['tune'][1]} lacks {names.METRICS_FILE}"
    assert re.search(rf"tune: running \(run \w+\), {lacks}$", result.stderr, re.MULTILINE)


def test_editing_a_package_file_invalidates_the_steps_that_run_it(module_store, cold, tmp_path):
    copy = tmp_path / "psystock-edited"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "mlruns", "*.db", "__pycache__"))
    module = copy / "psystock" / "leaderboard.py"
    module.write_text(module.read_text() + "\n# an edit that changes no behaviour\n")
    result = mlflow_run(module_store, "main", small(names.STORE), project=copy)
    assert ran(result) == {"compare", "register", "report"}
    assert re.search(r"compare: running \(run \w+\), changed since run \w+: (.*, )?code$", result.stderr, re.MULTILINE)


def test_a_killed_pipeline_resumes_without_redoing_finished_steps(module_store, cold):
    params = small(names.STORE, seed=7)  # new trainings, compare and tune; data steps cached
    process = subprocess.Popen(
        project_command(module_store, "main", params),
        env=module_store.env(),
        cwd=module_store.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    client = mlflow.MlflowClient()
    deadline = time.time() + 300
    finished: list[Run] = []
    while time.time() < deadline and not finished:
        time.sleep(0.5)
        finished = client.search_runs(
            [module_store.experiment_id],
            "tags.`psystock.step` LIKE 'train%' AND params.seed = '7' AND attributes.status = 'FINISHED'",
        )
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert finished, "no training step finished before the deadline"
    done_before = {
        r.data.tags[names.TAG_STEP]: r.info.run_id
        for r in client.search_runs(
            [module_store.experiment_id],
            "params.seed = '7' AND tags.`psystock.step` LIKE '%' AND attributes.status = 'FINISHED'",
        )
    }

    resumed = mlflow_run(module_store, "main", params)
    result = outcomes(resumed)
    for ep, rid in done_before.items():
        assert result[ep] == ("cached", rid)
    assert ran(resumed) == set(ALL) - {"fetch_data", "build_features"} - set(done_before)
    for _status, rid in result.values():
        assert mlflow.get_run(rid).info.status == "FINISHED"
    # What the kill left RUNNING (main, the step it was in) the resumed main marked KILLED, saying why.
    assert not client.search_runs([module_store.experiment_id], "params.seed = '7' AND attributes.status = 'RUNNING'")
    killed = client.search_runs([module_store.experiment_id], "params.seed = '7' AND attributes.status = 'KILLED'")
    assert "main" in {r.data.tags[names.TAG_STEP] for r in killed}
    assert all(r.data.tags[names.TAG_ENDED_UNSEEN].endswith("ended with the run RUNNING") for r in killed)
