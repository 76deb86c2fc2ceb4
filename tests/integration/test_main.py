"""The whole experiment: `mlflow run . -e main` on the real BTC-USD bars (2019-2020, short Keras
training and tuning: see ``small_pipeline``), then the step cache, parallel training and resume.

The tests share one cold pipeline and its tracking store, and build on each other in file order:
first what the cold pipeline made, then re-runs that must reuse exactly what did not change (and
one that deletes a run of it).
"""

import contextlib
import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Run

from psystock import names
from psystock.handover import NAME as WARM_NAME
from psystock.handover import OFF
from psystock.pipeline import STEP_NAMES
from tests.helpers import warm_cli
from tests.helpers.runs import PROJECT, mlflow_run, project_command
from tests.helpers.runs import small_pipeline as small

pytestmark = pytest.mark.integration

# No predict and no monitor: small_pipeline's gate refuses every model, so there is no champion.
STEPS = set(STEP_NAMES) - {"predict", "monitor"}


@pytest.fixture
def pipeline(cold_pipeline):
    assert cold_pipeline.returncode == 0, cold_pipeline.output[-4000:]
    return mlflow.get_run(cold_pipeline.run_id), cold_pipeline


@pytest.fixture
def module_store(pipeline_store):
    return pipeline_store


def test_main_finishes_with_every_step_linked_to_it(pipeline, module_store):
    main, _ = pipeline
    assert main.info.status == "FINISHED"
    steps = json.loads(main.data.tags["psystock.step_runs"])
    assert set(steps) == STEPS
    client = mlflow.MlflowClient()
    children = client.search_runs([module_store.experiment_id], f"tags.mlflow.parentRunId = '{main.info.run_id}'")
    assert {c.info.run_id for c in children} == set(steps.values())
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags[names.TAG_STEP] in STEPS
        host, _, pid = child.data.tags[names.TAG_PROCESS].rpartition(":")  # the step's own process
        assert host == socket.gethostname() and int(pid) != os.getpid()


def test_make_run_logs_into_the_psystock_experiment_and_so_does_every_step(pipeline):
    main, _ = pipeline
    experiment = mlflow.get_experiment(main.info.experiment_id)
    assert experiment.name == "psystock"
    assert experiment.tags[names.EXPERIMENT_KIND] == names.MODEL_DEVELOPMENT  # the UI opens on the runs
    steps = json.loads(main.data.tags["psystock.step_runs"])
    assert {mlflow.get_run(run_id).info.experiment_id for run_id in steps.values()} == {main.info.experiment_id}


def test_make_run_with_nothing_given_reads_the_committed_bars_from_the_price_store(pipeline, btc_csv):
    """The README's first command on a machine that cannot reach Yahoo: the bars are the committed
    ones, served by the store, and the run says so."""
    from psystock.data import read_csv, select_range, validate_prices
    from psystock.price_store import data_dir

    main, _ = pipeline
    assert main.data.params["source"] == names.STORE
    fetch = mlflow.get_run(json.loads(main.data.tags["psystock.step_runs"])["fetch_data"])
    assert fetch.data.tags[names.TAG_SERVED_BY] == names.STORE
    stored = data_dir() / "bars" / f"{fetch.data.tags[names.TAG_STORED_BARS]}.csv"
    assert stored.read_bytes() == btc_csv.read_bytes()
    assert fetch.inputs is not None
    (dataset,) = fetch.inputs.dataset_inputs
    assert json.loads(dataset.dataset.source)["uri"].endswith(str(stored))
    prices = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{fetch.info.run_id}/prices/prices.csv"))
    expected = select_range(
        validate_prices(read_csv(str(btc_csv))), pd.Timestamp("2019-01-01").date(), pd.Timestamp("2020-12-31").date()
    )
    assert prices["Date"].tolist() == expected.frame["Date"].dt.strftime("%Y-%m-%d").tolist()
    assert prices["Close"].tolist() == pytest.approx(expected.frame["Close"].tolist())


def test_main_chains_outputs_by_run_uris(pipeline):
    main, _ = pipeline
    steps = json.loads(main.data.tags["psystock.step_runs"])
    get = lambda ep: mlflow.get_run(steps[ep])  # noqa: E731
    assert get("build_features").data.params["prices"] == f"runs:/{steps['fetch_data']}/prices"
    features = f"runs:/{steps['build_features']}/features"
    for ep in ("train_logreg", "train_xgboost", "train_keras", "baselines", "tune"):
        assert get(ep).data.params["training_data"] == features
    compared = get("compare").data.params["training_runs"].split(",")
    assert compared[:3] == [steps[ep] for ep in ("train_logreg", "train_xgboost", "train_keras")]
    baselines = mlflow.artifacts.load_dict(f"runs:/{steps['baselines']}/baselines.json")
    assert sorted(compared[3:]) == sorted(baselines.values())
    assert get("train_keras").data.params["epochs"] == "1"


def test_leaderboard_lists_families_and_baselines_and_tune_takes_the_best_model(pipeline):
    main, _ = pipeline
    steps = json.loads(main.data.tags["psystock.step_runs"])
    board = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{steps['compare']}/leaderboard/leaderboard.csv"))
    assert sorted(board["family"]) == ["baseline", "baseline", "baseline", "keras", "logreg", "xgboost"]
    assert sorted(board.loc[board["family"] == "baseline", "run_name"]) == [
        "baseline_always_up",
        "baseline_persistence",
        "baseline_random_rate",
    ]
    assert board["cv_mcc_mean"].is_monotonic_decreasing  # ranked by the development period
    winner = board[board["family"] != "baseline"].iloc[0]["family"]
    compare = mlflow.get_run(steps["compare"])
    best_baseline = board[board["family"] == "baseline"].iloc[0]
    assert compare.data.tags[names.TAG_BEST_BASELINE] == best_baseline["run_name"]
    model_score = board[board["family"] != "baseline"].iloc[0]["cv_mcc_mean"]
    assert compare.data.tags[names.TAG_BEATS_BASELINES] == str(model_score > best_baseline["cv_mcc_mean"]).lower()
    tune = mlflow.get_run(steps["tune"])
    assert tune.data.params["family"] == winner
    assert main.data.tags[names.TAG_WINNER_FAMILY] == winner
    assert main.data.metrics["tuned_test_mcc"] == tune.data.metrics["test_mcc"]
    assert main.data.metrics["tuned_best_cv_mcc"] == tune.data.metrics["best_cv_mcc"]


def test_tuning_run_has_max_evals_children(pipeline, module_store):
    main, _ = pipeline
    tune_id = json.loads(main.data.tags["psystock.step_runs"])["tune"]
    trials = mlflow.MlflowClient().search_runs([module_store.experiment_id], f"tags.mlflow.parentRunId = '{tune_id}'")
    assert len(trials) == 2  # max_evals
    assert sorted(t.info.run_name for t in trials) == ["trial_001", "trial_002"]


def test_register_records_why_the_tuned_model_was_refused(pipeline):
    main, _ = pipeline
    steps = json.loads(main.data.tags["psystock.step_runs"])
    register = mlflow.get_run(steps["register"])
    tune = mlflow.get_run(steps["tune"])
    compare = mlflow.get_run(steps["compare"])
    assert register.data.params["tuned_run"] == steps["tune"]
    assert register.data.tags["psystock.decision"] == "refused"
    # small_pipeline asks for an improvement of more than 1, which MCC cannot give
    assert register.data.tags["psystock.reason"].endswith("the interval's low end is not above 1.0")
    assert register.data.metrics["candidate_mcc"] == tune.data.metrics["test_mcc"]
    assert {"improvement", "improvement_ci_low", "improvement_ci_high", "p_value"} <= set(register.data.metrics)
    # Every baseline was weighed; the decision turned on the one beaten by the least.
    lows = {
        name: register.data.metrics[f"improvement_ci_low_vs_{name}"]
        for name in ("baseline_always_up", "baseline_persistence", "baseline_random_rate")
    }
    assert register.data.tags[names.TAG_GATE_BASELINE] == min(lows, key=lambda name: lows[name])
    assert register.data.metrics["improvement_ci_low"] == min(lows.values())
    assert compare.data.tags[names.TAG_BEST_BASELINE] in lows
    assert main.data.tags["psystock.champion"] == "none"


def test_the_report_says_what_was_found_before_anything_else(pipeline):
    main, _ = pipeline
    steps = json.loads(main.data.tags["psystock.step_runs"])
    report = mlflow.get_run(steps["report"])
    register = mlflow.get_run(steps["register"])
    verdict = report.data.tags[names.TAG_VERDICT]
    holdout = register.data.tags[names.TAG_HOLDOUT_RANGE]
    assert verdict.startswith(f"On the holdout {holdout} no model beats {register.data.tags[names.TAG_GATE_BASELINE]}")
    assert verdict.endswith("nothing registered.") and main.data.tags[names.TAG_VERDICT] == verdict
    # main's description in the UI: the verdict, then the report's runs:/ URI, which loads.
    note = main.data.tags[names.TAG_NOTE]
    where = f"runs:/{steps['report']}/report/report.html"
    assert note.startswith(verdict + "\n\n") and where in note
    page = mlflow.artifacts.load_text(where)
    assert "https://" not in page and "http://" not in page  # self-contained
    first = re.search(r'<p class="verdict refused">([^<]*)</p>', page)
    assert first and first.group(1) == html.escape(verdict)
    assert page.index("verdict") < page.index("Leaderboard") < page.index("Backtest") < page.index("registry gate")
    # the equity curves, the bar chart, and per model its confusion matrix, ROC and equity curves
    assert page.count("data:image/png;base64,") == 2 + 4 * 3
    fetch = mlflow.get_run(steps["fetch_data"])
    assert fetch.data.tags["psystock.dataset_digest"] in page and "2019-01-01 to 2020-12-31" in page
    backtest = pd.read_csv(mlflow.artifacts.download_artifacts(f"runs:/{steps['report']}/report/backtest.csv"))
    assert backtest["strategy"].iloc[-1] == "buy and hold" and len(backtest) == 3 + 3 + 1 + 1


def test_main_reports_progress_per_step(pipeline):
    _, result = pipeline
    for step in STEPS:
        # The store's first pipeline: each step says why it runs.
        assert re.search(rf"{step}: running \(run \w+\), no earlier run of this step$", result.stderr, re.MULTILINE)
        assert re.search(rf"{step}: finished \(run \w+\) in \d+\.\d s", result.stderr), step
        # The closing summary gives each step that ran its wall time.
        assert re.search(rf"^  {step}\s+finished\s+run \w+  \d+\.\d s$", result.stdout, re.MULTILINE), step
    # MLflow's own line for each launch it ran is left out: `mlflow run` announces main's alone.
    assert result.stderr.count("succeeded ===") == 1


def test_a_pipeline_leaves_no_temporary_file_behind(pipeline, pipeline_temp):
    """The steps read other runs' artifacts (features, leaderboards, answers, plots) from copies
    downloaded into temporary directories; each is removed once read. What is left is MLflow's
    own: the `mlflow` command makes a directory for the driver's remote `path` parameters (it has
    none) and keeps it, empty."""
    left = sorted(str(path.relative_to(pipeline_temp)) for path in pipeline_temp.rglob("*"))
    assert not [path for path in pipeline_temp.rglob("*") if not path.is_dir()], left
    assert len(list(pipeline_temp.iterdir())) <= 1, left


# --- re-runs: the step cache, parallel training, resume ------------------------------


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
        # New interpreters, killed with no chance to end their runs (a warm server's steps would be
        # stopped and end theirs): what the resume must mend.
        env=module_store.env() | {WARM_NAME: OFF},
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


def _alive(group: int) -> bool:
    return subprocess.run(["pgrep", "-g", str(group)], capture_output=True).returncode == 0


def _started_step(client, store, seed: int, step: str, deadline: float) -> Run | None:
    """The run of ``step`` for ``seed`` once its process has begun it (tagged its process), or None."""
    while time.time() < deadline:
        found = client.search_runs(
            [store.experiment_id],
            f"tags.`psystock.step` = '{step}' AND params.seed = '{seed}' AND tags.`{names.TAG_PROCESS}` LIKE '%'",
        )
        if found:
            started: Run = found[0]
            return started
        time.sleep(0.3)
    return None


@pytest.mark.parametrize(
    ("seed", "signum", "whom", "launcher"),
    [
        (8, signal.SIGINT, "the terminal's job", names.FORKSERVER),
        (9, signal.SIGTERM, "main alone", names.FORKSERVER),
        (10, signal.SIGTERM, "main alone", names.SUBPROCESS),
    ],
    ids=["ctrl-c", "kill-main", "kill-main-of-new-interpreters"],
)
def test_a_stopped_pipeline_ends_every_run_it_began_and_leaves_no_process(
    module_store, cold, seed, signum, whom, launcher
):
    """Ctrl-C reaches every process of the job; `kill` of main (what MLflow does to cancel it)
    reaches main alone, which passes it on to its steps, forked or new interpreters. Either way
    each run ends FAILED, saying which signal stopped it, and nothing is left running."""
    # Data steps cached; a long Keras training is stopped mid-way.
    params = small(names.STORE, seed=seed, families="keras", keras_epochs=400, launcher=launcher)
    out, err = module_store.root / f"stopped-{seed}.out", module_store.root / f"stopped-{seed}.err"
    # `mlflow run` in a session of its own, as a terminal starts a job.
    process = warm_cli.start(
        project_command(module_store, "main", params)[1:], module_store.env(), module_store.root, out, err
    )
    job = process.pid
    assert job is not None
    try:
        client = mlflow.MlflowClient()
        training = _started_step(client, module_store, seed, "train_keras", time.time() + 300)
        main = _started_step(client, module_store, seed, "main", time.time() + 10)
        assert training is not None and main is not None, "the pipeline never began its training"
        if whom == "main alone":
            os.kill(int(main.data.tags[names.TAG_PROCESS].rpartition(":")[2]), signum)
        else:
            os.killpg(job, signum)
        process.join(timeout=120)
        deadline = time.time() + 60  # main's servers and steps, forked apart from it, end too
        while time.time() < deadline and _alive(job):
            time.sleep(0.2)
        left = subprocess.run(["pgrep", "-a", "-g", str(job)], capture_output=True, text=True).stdout
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever a failed assertion left running
            os.killpg(job, signal.SIGKILL)
    said = out.read_text() + err.read_text()
    assert process.exitcode != 0
    assert not left, f"still running after the pipeline: {left}"
    name = signal.Signals(signum).name
    runs = client.search_runs([module_store.experiment_id], f"params.seed = '{seed}'")
    assert not [run.info.run_name for run in runs if run.info.status == "RUNNING"]
    # The steps' runs; a step's own child runs (each baseline's) end with it, FAILED if it failed.
    steps = {run.data.tags[names.TAG_STEP]: run for run in runs if names.TAG_STEP in run.data.tags}
    assert steps["main"].info.status == steps["train_keras"].info.status == "FAILED"
    for step, run in steps.items():  # the baselines, beside the training, may have finished first
        if run.info.status == "FAILED":  # TensorFlow, stopped mid-work, may abort before the run ends
            assert re.fullmatch(
                rf"{step}: stopped by {name}(, then its process \d+ was killed by SIG\w+)?",
                run.data.tags[names.TAG_ERROR],
            )
    assert f"main: stopped by {name}" in said and "Traceback" not in said, said[-3000:]
