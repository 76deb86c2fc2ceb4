"""psystock benchmarks: `make bench` prints a table and writes JSON.

Usage: python -m benchmarks.run [--data PATH] [--repeat N]
       [--only pipeline,warm,evaluation,tuning,server,envs,cache,universe]
       [--universe-sizes 1,2,4,8] [--out FILE]

pipeline: a cold `mlflow run . -e main` on BTC-USD 2014-2020 (empty tracking
          store, default parameters) with each step's own time; the warm
          re-run with nothing changed; `mlflow run` of a step that only
          starts and ends a run (the floor under any warm re-run); `mlflow
          --version` (the CLI's own start-up and exit); cold and warm main
          through `mlflow.projects.run` in this process (no CLI); a cold run
          with max_parallel=1; a cold main with launcher=subprocess; the
          book's notebooks as one script (benchmarks/book.py) into an empty
          store, and a cold main's share of its time.
warm:     with a warm server (`make warm`) and without (every other part
          runs without one): `mlflow run -e fetch_data` alone (median of 3;
          with the server, also through `psystock-mlflow`) and a cold main
          into an empty store.
evaluation: the protocol's parts: 2,000 block-bootstrap resamples of 750 days
          (the holdout's MCC interval; the paired evidence of the registry
          gate), and one evaluation per family (5-fold walk-forward CV on the
          development period, the fit on all of it, interval and backtest).
tuning:   on the BTC-USD 2014-2020 features: 100 logistic-regression trials
          with 5-fold CV, each a child run (psystock's logging path); the same
          search with bare `hyperopt.fmin` and no MLflow (overhead per trial);
          10 trials the reference way (`mlflow.sklearn.autolog()` inside the
          objective, a nested run per trial) vs psystock; 20 xgboost trials
          sequential vs SparkTrials on local[2].
server:   through a real `mlflow server` (SQLite, then an initdb PostgreSQL
          backend): runs and metrics logged per second by psystock's trial
          logging (one batch per run) vs one call per metric; 100 logreg
          trials tuned against the SQLite server (logged in the background,
          and inline for comparison) vs against a SQLite file; on PostgreSQL,
          the wall time of 4 concurrent pipelines (seeds 1-4) vs one.
envs:     `mlflow run -e fetch_data` with an environment built from scratch
          by uv and by virtualenv (pyenv + pip; pip downloads what it has
          not cached) vs the local one; a cold main from a Git URL served by
          `git daemon` vs from the working copy.
cache:    the step-cache lookup with 100, 1,000 and 10,000 runs in the
          experiment (runs created with MlflowClient), SQLite store; and,
          for a miss, the query for the step's newest run (what changed).
universe: `mlflow run . -e universe` on 1, 2, 4 and 8 tickers (the
          committed SPY, GLD and IBM bars, 2005-2012, under new names;
          default parameters; max_pipelines the default; other sizes with
          --universe-sizes) vs a cold main of one of them; the largest again
          with nothing changed; 2 tickers with spark_master=local[2] vs the
          same 2 locally. Each run's CPU too (every process it started), and
          each step's (its runs' cpu_seconds) in the largest universe.

Step times are each step run's start to end as MLflow recorded them,
including the step process's start-up.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mlflow.entities import Run

from psystock import names
from psystock.pipeline import STEP_NAMES
from tests.helpers.services import mlflow_run_command

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = PROJECT / "tests" / "fixtures" / "BTC-USD.csv"  # real BTC-USD bars, 2014-09-17..2020-12-31


def _children_cpu() -> float:
    """User and system seconds of this process's ended children and theirs: each process an
    `mlflow run` starts is waited for by its parent (a step by its server, a server by its driver),
    so a run's delta counts them all."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


class Store:
    """An empty experiment: in a SQLite store in a temporary folder, or on a tracking server."""

    def __init__(self, server_url: str | None = None):
        from mlflow.tracking import MlflowClient

        self.tmp = tempfile.TemporaryDirectory()
        self.uri = server_url or f"sqlite:///{self.tmp.name}/mlflow.db"
        self.client = MlflowClient(self.uri)
        # On a server, artifacts go through it (proxied); locally, into the temporary folder.
        location = None if server_url else f"{self.tmp.name}/artifacts"
        self.experiment_id = self.client.create_experiment("bench", artifact_location=location)
        self.cpu = 0.0  # core-seconds of the last `mlflow run` and every process it started (see mlflow_run)

    def main(self, data: Path, *params: str) -> float:
        """Wall seconds of one `mlflow run . -e main`."""
        return self.mlflow_run(PROJECT, f"source={data}", *params)

    def floor(self) -> float:
        """Wall seconds of `mlflow run` of a project whose step only starts and ends a run.

        What any `mlflow run` costs here before a step does work: the CLI's
        start-up and exit plus one step process importing MLflow.
        """
        project = Path(self.tmp.name) / "noop"
        project.mkdir(exist_ok=True)
        (project / "MLproject").write_text(
            "name: noop\nentry_points:\n  main:\n"
            "    command: \"python -c 'import mlflow; mlflow.start_run(); mlflow.end_run()'\"\n"
        )
        return self.mlflow_run(project)

    def mlflow_run(
        self,
        project: Path | str,
        *params: str,
        entry_point: str = "main",
        env_manager: str = "local",
        options: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        executable: str = "mlflow",
    ) -> float:
        env = dict(os.environ, MLFLOW_TRACKING_URI=self.uri, PSYSTOCK_LOG_LEVEL="WARNING", **(env or {}))
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
        given = dict(param.split("=", 1) for param in params)
        command = mlflow_run_command(project, entry_point, self.experiment_id, given, env_manager, options, executable)
        started, before = time.perf_counter(), _children_cpu()
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=self.tmp.name)
        if done.returncode != 0:
            sys.exit(f"{project} -e {entry_point} failed:\n{done.stderr[-3000:]}")
        self.cpu = _children_cpu() - before
        return time.perf_counter() - started

    def main_in_process(self, data: Path) -> float:
        """Wall seconds of ``mlflow.projects.run(".", "main")`` from this process, MLflow already imported:
        the same run without the `mlflow` CLI's own start-up and exit (as a notebook or a scheduler runs it)."""
        import mlflow
        import mlflow.projects

        mlflow.set_tracking_uri(self.uri)  # handed to the step processes
        os.environ["PSYSTOCK_LOG_LEVEL"] = "WARNING"
        try:
            with _quiet_stdout():
                started = time.perf_counter()
                mlflow.projects.run(
                    str(PROJECT),
                    "main",
                    parameters={"source": str(data)},
                    experiment_id=self.experiment_id,
                    env_manager="local",
                )
                return time.perf_counter() - started
        finally:
            del os.environ["PSYSTOCK_LOG_LEVEL"]

    def book(self, data: Path) -> float:
        """Wall seconds of ``python -m benchmarks.book`` (the reference's notebooks as one script) into
        this store, its one interpreter's start-up included."""
        env = dict(os.environ, MLFLOW_TRACKING_URI=self.uri, PYTHONPATH=str(PROJECT))
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.book", "--data", str(data)],
            env=env,
            capture_output=True,
            text=True,
            cwd=self.tmp.name,
        )
        if done.returncode != 0:
            sys.exit(f"benchmarks.book failed:\n{done.stderr[-3000:]}")
        return time.perf_counter() - started

    def step_seconds(self) -> dict[str, float]:
        return {
            r.data.tags[names.TAG_STEP]: (r.info.end_time - r.info.start_time) / 1000
            for r in self._step_runs()
            if r.data.tags[names.TAG_STEP] in STEP_NAMES
        }

    def step_cpu(self, prefix: str = "") -> dict[str, float]:
        """Each entry point's CPU, its drivers' (``main``, ``universe``) included: its runs'
        ``cpu_seconds``, summed over a universe's pipelines; then all of them together."""
        cpu: dict[str, float] = {}
        for r in self._step_runs():
            if names.CPU_SECONDS in r.data.metrics:
                step = r.data.tags[names.TAG_STEP]
                cpu[step] = cpu.get(step, 0.0) + r.data.metrics[names.CPU_SECONDS]
        ranked = sorted(cpu.items(), key=lambda item: -item[1])
        return {f"{prefix}{step} (CPU core-s)": used for step, used in ranked} | {
            f"{prefix}all its runs (CPU core-s)": sum(cpu.values())
        }

    def _step_runs(self) -> list[Run]:
        return list(
            self.client.search_runs([self.experiment_id], f"tags.`{names.TAG_STEP}` LIKE '%'", max_results=50000)
        )


@contextlib.contextmanager
def _quiet_stdout():
    """Send this process's stdout (and its children's) to /dev/null: the table stays readable."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def cli_seconds() -> float:
    """Wall seconds of `mlflow --version`: the CLI's own start-up and exit, before any project."""
    started = time.perf_counter()
    subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "mlflow"), "--version"], check=True, capture_output=True
    )
    return time.perf_counter() - started


def bench_pipeline(data: Path) -> dict[str, float]:
    store = Store()
    result = {"cold main (wall)": store.main(data)}
    result["cold main (CPU core-s)"] = store.cpu
    result.update(store.step_seconds())
    result.update(store.step_cpu("cold main: "))
    result["warm main, nothing changed (wall)"] = store.main(data)
    result["warm / cold"] = result["warm main, nothing changed (wall)"] / result["cold main (wall)"]
    result["mlflow run of a no-op step (wall)"] = store.floor()
    result["no-op / cold"] = result["mlflow run of a no-op step (wall)"] / result["cold main (wall)"]
    result["mlflow --version (wall)"] = cli_seconds()
    in_process = Store()
    result["cold main, mlflow.projects.run (wall)"] = in_process.main_in_process(data)
    result["warm main, mlflow.projects.run (wall)"] = in_process.main_in_process(data)
    result["warm / cold, mlflow.projects.run"] = (
        result["warm main, mlflow.projects.run (wall)"] / result["cold main, mlflow.projects.run (wall)"]
    )
    sequential = Store()
    result["cold main, max_parallel=1 (wall)"] = sequential.main(data, "max_parallel=1")
    result["parallel / sequential"] = result["cold main (wall)"] / result["cold main, max_parallel=1 (wall)"]
    # Each step a new interpreter (MLflow's local backend) rather than forked warm (the default).
    cold_starts = Store()
    result["cold main, launcher=subprocess (wall)"] = cold_starts.main(data, "launcher=subprocess")
    result["forkserver / subprocess"] = result["cold main (wall)"] / result["cold main, launcher=subprocess (wall)"]
    print("  the book's notebooks as one script ...", file=sys.stderr, flush=True)
    result["the book's notebooks as one script (wall)"] = Store().book(data)
    result["cold main / book"] = result["cold main (wall)"] / result["the book's notebooks as one script (wall)"]
    return result


def bench_warm(data: Path, repeats: int = 3) -> dict[str, float]:
    """With a warm server (``make warm``) and without: ``fetch_data`` run alone (the median of
    ``repeats``; with the server, also through ``psystock-mlflow``), and a cold ``main`` into an
    empty store."""
    from psystock import handover, warm

    name = f"bench-{os.getpid()}"
    on, off = {handover.NAME: name}, {handover.NAME: handover.OFF}
    store = Store()
    alone = ("source=" + str(data),)
    result = {}
    os.environ[handover.NAME] = name
    try:
        warm.start()
        for label, env, executable in (
            ("no warm server", off, "mlflow"),
            ("warm server", on, "mlflow"),
            ("psystock-mlflow, warm server", on, "psystock-mlflow"),
        ):
            seconds = [
                store.mlflow_run(PROJECT, *alone, entry_point="fetch_data", env=env, executable=executable)
                for _ in range(repeats)
            ]
            result[f"fetch_data alone, {label} (wall)"] = statistics.median(seconds)
        for label, env in (("no warm server", off), ("warm server", on)):
            result[f"cold main, {label} (wall)"] = Store().mlflow_run(PROJECT, *alone, env=env)
    finally:
        warm.stop(name)
        os.environ[handover.NAME] = handover.OFF
    result["fetch_data alone, warm / not"] = (
        result["fetch_data alone, warm server (wall)"] / result["fetch_data alone, no warm server (wall)"]
    )
    result["fetch_data alone, psystock-mlflow warm / mlflow not"] = (
        result["fetch_data alone, psystock-mlflow, warm server (wall)"]
        / result["fetch_data alone, no warm server (wall)"]
    )
    result["cold main, warm / not"] = (
        result["cold main, warm server (wall)"] / result["cold main, no warm server (wall)"]
    )
    return result


def bench_cache(sizes=(100, 1_000, 10_000), lookups: int = 20) -> dict[str, float]:
    os.environ.setdefault("MLFLOW_TRACKING_URI", "sqlite:///unused.db")
    import mlflow
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    from psystock import names
    from psystock.mlflow_io import cache_store

    result = {}
    store = Store()
    mlflow.set_tracking_uri(store.uri)
    created = 0
    for size in sizes:
        print(f"  creating runs up to {size} ...", file=sys.stderr, flush=True)
        while created < size:
            run = store.client.create_run(
                store.experiment_id,
                tags={**cache_store.cache_tags(f"key-{created}"), names.TAG_STEP: "compare", MLFLOW_RUN_NAME: "r"},
            )
            store.client.set_terminated(run.info.run_id, "FINISHED")
            created += 1
        for label, key in (("hit", f"key-{size // 2}"), ("miss", "no-such-key")):
            times = []
            for _ in range(lookups):
                started = time.perf_counter()
                cache_store.find_cached_run(store.experiment_id, key, "compare")
                times.append(time.perf_counter() - started)
            result[f"lookup {label}, {size} runs (ms)"] = 1000 * statistics.median(times)
        times = []
        for _ in range(lookups):  # on a miss: what changed since the step's newest run
            started = time.perf_counter()
            cache_store.latest_step_run(store.experiment_id, "compare")
            times.append(time.perf_counter() - started)
        result[f"newest run of a step, {size} runs (ms)"] = 1000 * statistics.median(times)
    result["lookup miss 10000 / 100"] = result["lookup miss, 10000 runs (ms)"] / result["lookup miss, 100 runs (ms)"]
    return result


def development_rows(data: Path):
    """The development period's features of BTC-USD 2014-2020 (updown, window 14): what tune searches on."""
    from psystock.data import load_prices, parse_day
    from psystock.evaluation import split_dataset
    from psystock.features import feature_set, going_up, make_windows

    prices = load_prices(str(data), "BTC-USD", parse_day("2014-01-01", "start"), parse_day("2020-12-31", "end"), 1)
    parts = split_dataset(feature_set(make_windows(going_up(prices.frame), 14)), "chronological", 0.33, 4284)
    return parts.X_train, parts.y_train


def psystock_search(store: Store, family, X, y, max_evals: int, inline: bool = False, **settings) -> float:
    """Wall seconds of ``tune``'s search: TPE, 5-fold CV per trial, each trial a child run logged in
    the background and flushed before the end (as the tune step does); ``inline``: each trial logged
    before the next starts, for comparison."""
    from psystock import tuning
    from psystock.mlflow_io.lifecycle import quiet_run_urls
    from psystock.mlflow_io.trials import TrialLogger

    parent = store.client.create_run(store.experiment_id).info.run_id
    logger = TrialLogger(store.experiment_id, parent, family.name, "mcc", store.uri)

    def log_now(trial: tuning.TrialResult) -> None:
        logger.log(trial)

    started = time.perf_counter()
    with quiet_run_urls():
        result = tuning.tune(
            family,
            X,
            y,
            split="chronological",
            n_folds=5,
            metric="mcc",
            settings=tuning.SearchSettings(max_evals, 4284, **settings),
            on_trial=log_now if inline else logger,
        )
        logger.flush()
    seconds = time.perf_counter() - started
    logged = store.client.search_runs([store.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert len(logged) == len(result.trials) == max_evals, "every trial must be a child run"
    return seconds


def bench_tuning(data: Path) -> dict[str, float]:
    import mlflow
    import numpy as np
    from hyperopt import Trials, fmin, tpe

    from psystock import tuning
    from psystock.models import get_family

    X, y = development_rows(data)
    store = Store()
    mlflow.set_tracking_uri(store.uri)

    def search(family, objective, max_evals: int) -> None:
        """hyperopt's TPE alone, with psystock's seed: no MLflow of its own."""
        fmin(
            objective,
            family.search_space(),
            algo=tpe.suggest,
            max_evals=max_evals,
            trials=Trials(),
            rstate=np.random.default_rng(4284),
            show_progressbar=False,
            return_argmin=False,
        )

    def bare_search(family, max_evals: int) -> float:
        objective = tuning.Objective(family, X, y, "chronological", 5, 4284, "mcc")
        started = time.perf_counter()
        search(family, objective, max_evals)
        return time.perf_counter() - started

    def reference_search(family, max_evals: int) -> float:
        """The reference's way: autologging on inside the objective, a nested run per trial."""

        def objective(sample):
            with mlflow.start_run(nested=True):
                mlflow.sklearn.autolog(silent=True)
                params = family.params(tuning.flatten(sample))
                scores = tuning.cv_scores(family, X, y, params, "chronological", 5, 4284, "mcc")
                mlflow.log_metric("loss", 1 - float(np.mean(scores)))
            return 1 - float(np.mean(scores))

        family.prepare()  # as a step does: autologging's warning of a renamed argument, once
        started = time.perf_counter()
        with mlflow.start_run(experiment_id=store.experiment_id):
            search(family, objective, max_evals)
        mlflow.sklearn.autolog(disable=True)
        return time.perf_counter() - started

    logreg, xgboost = get_family("logreg"), get_family("xgboost")
    result = {}
    print("  100 logreg trials, bare fmin and psystock ...", file=sys.stderr, flush=True)
    bare_search(logreg, 5)  # warm imports and caches for both
    result["100 logreg trials, bare fmin (s)"] = bare_search(logreg, 100)
    result["100 logreg trials, psystock (s)"] = psystock_search(store, logreg, X, y, 100)
    result["logging overhead per trial (ms)"] = 10 * (
        result["100 logreg trials, psystock (s)"] - result["100 logreg trials, bare fmin (s)"]
    )
    print("  10 logreg trials, the reference way ...", file=sys.stderr, flush=True)
    result["10 logreg trials, reference autolog (s)"] = reference_search(logreg, 10)
    result["10 logreg trials, psystock (s)"] = psystock_search(store, logreg, X, y, 10)
    result["reference / psystock"] = (
        result["10 logreg trials, reference autolog (s)"] / result["10 logreg trials, psystock (s)"]
    )
    print("  20 xgboost trials, sequential and SparkTrials local[2] ...", file=sys.stderr, flush=True)
    result["20 xgboost trials, sequential (s)"] = psystock_search(store, xgboost, X, y, 20)
    spark = tuning.SearchSettings(20, 4284, parallelism=2, spark_master="local[2]")
    started = time.perf_counter()
    tuning.spark_trials(spark)  # the session, reused by the search below
    result["Spark local[2] start-up (s)"] = time.perf_counter() - started
    result["20 xgboost trials, SparkTrials local[2] (s)"] = psystock_search(
        store, xgboost, X, y, 20, parallelism=2, spark_master="local[2]"
    )
    return result


def bench_evaluation(data: Path) -> dict[str, float]:
    """The protocol's costs on BTC-USD 2014-2020: the bootstrap (2,000 resamples of 750 days), and each
    family's evaluation (5-fold walk-forward CV on the development period, the fit on all of it,
    the holdout's interval and backtest), in this process."""
    import numpy as np

    from psystock import baselines, bootstrap, features, protocol, registry, scores
    from psystock.data import load_prices, parse_day
    from psystock.models import all_families, get_family
    from psystock.training import family_candidate

    rng = np.random.default_rng(0)
    truth, answers, other = rng.integers(0, 2, 750), rng.random(750), rng.integers(0, 2, 750)
    result: dict[str, float] = {}
    for name, run in (
        (
            "2000 resamples of 750 days: MCC interval (s)",
            lambda: bootstrap.interval(
                lambda idx: scores.resampled("mcc", truth, answers, idx), 750, answers > 0.5, 0.95, 0
            ),
        ),
        (
            "2000 resamples of 750 days: paired gate evidence (s)",
            lambda: registry.evidence("mcc", truth, answers, other, 0.95, 0, 1),
        ),
    ):
        run()  # first call: imports
        started = time.perf_counter()
        run()
        result[name] = time.perf_counter() - started
    prices = load_prices(str(data), "BTC-USD", parse_day("2014-01-01", "start"), parse_day("2020-12-31", "end"), 15)
    table = features.make_table(prices.frame, "updown", 14)
    frame = table.frame.reset_index(drop=True)
    days = table.returns.index.to_series().dt.strftime("%Y-%m-%d").reset_index(drop=True)
    dataset = features.feature_set(frame, days, table.returns.reset_index(drop=True))
    settings = protocol.Settings()
    candidates = {
        name: family_candidate(get_family(name), get_family(name).defaults(), 4284) for name in all_families()
    }
    candidates["baseline always_up"] = baselines.candidate("always_up", 4284)
    for name, candidate in candidates.items():
        print(f"  evaluating {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        protocol.evaluate(candidate, dataset, settings)
        result[f"evaluate {name}: 5-fold CV, fit, interval, backtest (s)"] = time.perf_counter() - started
    return result


def bench_server(data: Path, runs: int = 100) -> dict[str, float]:
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    from psystock.mlflow_io.trials import TrialLogger
    from psystock.models import get_family
    from psystock.tuning import TrialResult
    from tests.helpers.services import Postgres, TrackingServer

    params = {"C": 0.5, "solver": "saga", "l1_ratio": 0.3, "class_weight": "None", "max_iter": 1000}
    folds = [0.61, 0.58, 0.66, 0.59, 0.63]
    metric_count = len(folds) + 3  # folds, their mean, loss, seconds
    result = {}
    for backend in ("SQLite", "PostgreSQL"):
        postgres = Postgres().start() if backend == "PostgreSQL" else None
        root = tempfile.TemporaryDirectory()
        server = TrackingServer(Path(root.name), backend_store_uri=postgres.uri if postgres else "")
        try:
            print(f"  {backend} server ...", file=sys.stderr, flush=True)
            server.start()
            store = Store(server.url)
            client, experiment = store.client, store.experiment_id
            parent = client.create_run(experiment).info.run_id
            logger = TrialLogger(experiment, parent, "logreg", "mcc", server.url)
            started = time.perf_counter()
            for number in range(1, runs + 1):
                logger.log(TrialResult(number, params, folds, 0.38, 0.05))
            batch = time.perf_counter() - started
            started = time.perf_counter()
            for _ in range(runs):
                run_id = client.create_run(experiment, tags={MLFLOW_PARENT_RUN_ID: parent}).info.run_id
                for name, value in params.items():
                    client.log_param(run_id, name, value)
                for i, score in enumerate(folds):
                    client.log_metric(run_id, f"cv_mcc_fold_{i}", score)
                for name, value in (("cv_mcc_mean", 0.6), ("loss", 0.38), ("seconds", 0.05)):
                    client.log_metric(run_id, name, value)
                client.set_terminated(run_id)
            single = time.perf_counter() - started
            result[f"{backend} server: runs/s, psystock batch"] = runs / batch
            result[f"{backend} server: metrics/s, psystock batch"] = runs * metric_count / batch
            result[f"{backend} server: runs/s, one call per metric"] = runs / single
            result[f"{backend} server: metrics/s, one call per metric"] = runs * metric_count / single
            if not postgres:
                print(f"  {runs} logreg trials tuned, on this server and on SQLite ...", file=sys.stderr, flush=True)
                X, y = development_rows(data)
                logreg = get_family("logreg")
                psystock_search(Store(), logreg, X, y, 5)  # warm imports and caches
                on_file = psystock_search(Store(), logreg, X, y, runs)
                on_server = psystock_search(store, logreg, X, y, runs)
                result[f"{runs} logreg trials tuned, SQLite file store (s)"] = on_file
                result[f"{runs} logreg trials tuned, SQLite server (s)"] = on_server
                result[f"{runs} logreg trials tuned, SQLite server, logged inline (s)"] = psystock_search(
                    store, logreg, X, y, runs, inline=True
                )
                result["trials: server / SQLite file"] = on_server / on_file
            if postgres:
                print("  one pipeline, then four at once ...", file=sys.stderr, flush=True)
                result["PostgreSQL server: one main (wall)"] = store.main(data, "seed=1")
                started = time.perf_counter()
                with ThreadPoolExecutor(4) as pool:
                    list(
                        pool.map(
                            functools.partial(store.main, data, "max_parallel=1"),
                            ("seed=11", "seed=12", "seed=13", "seed=14"),
                        )
                    )
                result["PostgreSQL server: 4 mains at once (wall)"] = time.perf_counter() - started
        finally:
            server.stop()
            if postgres:
                postgres.stop()
    return result


def bench_environments(data: Path) -> dict[str, float]:
    from tests.helpers.services import GitDaemon, git

    result = {}
    fetch = (f"source={data}",)
    store = Store()
    result["fetch_data, local environment (wall)"] = store.mlflow_run(PROJECT, *fetch, entry_point="fetch_data")
    for manager in ("uv", "virtualenv"):
        print(f"  building an environment with {manager} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as envs:
            result[f"fetch_data, new {manager} environment (wall)"] = store.mlflow_run(
                PROJECT, *fetch, entry_point="fetch_data", env_manager=manager, env={"MLFLOW_ENV_ROOT": envs}
            )
    print("  main from a Git URL and from the working copy ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as root:
        daemon = GitDaemon(Path(root)).start()
        url = daemon.publish(PROJECT, "psystock.git")
        commit = git("rev-parse", "HEAD", cwd=PROJECT)
        try:
            daemon.wait_for(url)
            result["cold main from the Git URL (wall)"] = Store().mlflow_run(
                url, f"source={data}", options=("--version", commit)
            )
        finally:
            daemon.stop()
    result["cold main from the working copy (wall)"] = Store().main(data)
    return result


def bench_universe(sizes: tuple[int, ...] = (1, 2, 4, 8)) -> dict[str, float]:
    """``universe`` on each of ``sizes`` tickers (the committed SPY, GLD and IBM bars under new
    names, 2005-2012, default parameters), each into an empty store; a cold main of one of them;
    the largest universe again with nothing changed; with 2 among the sizes, 2 tickers with
    spark_master=local[2]. Each run's CPU too (every process it started): an extra ticker's CPU
    over the machine's cores is what it adds to a universe's wall time once every core is busy."""
    import shutil

    fixtures = PROJECT / "tests" / "fixtures"
    folder = tempfile.TemporaryDirectory()
    tickers = [f"T{i}" for i in range(1, max(sizes) + 1)]
    for i, ticker in enumerate(tickers):
        shutil.copy(fixtures / ("SPY.csv", "GLD.csv", "IBM.csv")[i % 3], Path(folder.name) / f"{ticker}.csv")
    span = ("start=2005-01-01", "end=2012-08-31")
    result = {}
    print("  a cold main of one ticker ...", file=sys.stderr, flush=True)
    alone = Store()
    cold = alone.main(Path(folder.name) / "T1.csv", "ticker=T1", *span)
    result["cold main, one ticker (wall)"] = cold
    result["cold main, one ticker (CPU core-s)"] = alone.cpu
    result["cold main, one ticker: cores busy (CPU / wall)"] = alone.cpu / cold
    cpu = {}
    for n in sizes:
        print(f"  universe of {n} tickers ...", file=sys.stderr, flush=True)
        store = Store()
        given = (f"tickers={','.join(tickers[:n])}", f"source={folder.name}", *span)
        result[f"universe, {n} tickers (wall)"] = store.mlflow_run(PROJECT, *given, entry_point="universe")
        cpu[n] = result[f"universe, {n} tickers (CPU core-s)"] = store.cpu
        if n == max(sizes):
            result.update(store.step_cpu(f"universe, {n} tickers: "))
            result[f"universe, {n} tickers, nothing changed (wall)"] = store.mlflow_run(
                PROJECT, *given, entry_point="universe"
            )
    low, high = min(sizes), max(sizes)
    extra = (result[f"universe, {high} tickers (wall)"] - result[f"universe, {low} tickers (wall)"]) / (high - low)
    result["each extra ticker (wall)"] = extra
    result["each extra ticker / cold main"] = extra / cold
    # What an extra ticker adds once every core is busy: its work spread over all of them.
    extra_cpu = (cpu[high] - cpu[low]) / (high - low)
    result["each extra ticker (CPU core-s)"] = extra_cpu
    cores = os.cpu_count() or 1
    result[f"each extra ticker's CPU / {cores} cores / cold main"] = extra_cpu / cores / cold
    if 2 not in sizes:
        return result
    print("  universe of 2 tickers on Spark local[2] ...", file=sys.stderr, flush=True)
    on_spark = ("tickers=T1,T2", f"source={folder.name}", *span, "spark_master=local[2]")
    result["universe, 2 tickers, Spark local[2] (wall)"] = Store().mlflow_run(
        PROJECT, *on_spark, entry_point="universe"
    )
    result["Spark local[2] / local, 2 tickers"] = (
        result["universe, 2 tickers, Spark local[2] (wall)"] / result["universe, 2 tickers (wall)"]
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=1, help="cold/warm pipeline repetitions (median)")
    parser.add_argument("--only", default="pipeline,warm,evaluation,tuning,server,envs,cache,universe")
    parser.add_argument("--out", type=Path, default=PROJECT / "benchmarks" / "results" / "bench.json")
    parser.add_argument("--universe-sizes", default="1,2,4,8", help="tickers in each universe measured")
    args = parser.parse_args()
    # Every `python` an entry point runs must be this interpreter, however the benchmark was started.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    # Steps start as they would without `make warm`, whatever runs beside (the warm part starts its own).
    os.environ["PSYSTOCK_WARM"] = "off"
    # The runs the benchmark makes itself on its tracking servers, each ended with its links.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    parts = set(args.only.split(","))
    results: dict[str, float] = {}
    samples = []
    if "pipeline" in parts:
        if not args.data.is_file():
            sys.exit(f"benchmark data not found: {args.data} (pass --data PATH to a CSV in Yahoo's layout)")
        for i in range(args.repeat):
            print(f"pipeline {i + 1}/{args.repeat} (cold, warm, sequential) ...", file=sys.stderr, flush=True)
            samples.append(bench_pipeline(args.data))
        results.update({k: statistics.median(s[k] for s in samples) for k in samples[0]})
    if "warm" in parts:
        print("warm server ...", file=sys.stderr, flush=True)
        results.update(bench_warm(args.data))
    if "evaluation" in parts:
        print("evaluation ...", file=sys.stderr, flush=True)
        results.update(bench_evaluation(args.data))
    if "tuning" in parts:
        print("tuning ...", file=sys.stderr, flush=True)
        results.update(bench_tuning(args.data))
    if "server" in parts:
        print("tracking server ...", file=sys.stderr, flush=True)
        results.update(bench_server(args.data))
    if "envs" in parts:
        print("environments and Git ...", file=sys.stderr, flush=True)
        results.update(bench_environments(args.data))
    if "cache" in parts:
        print("cache lookups ...", file=sys.stderr, flush=True)
        results.update(bench_cache())
    if "universe" in parts:
        print("universes of tickers ...", file=sys.stderr, flush=True)
        results.update(bench_universe(tuple(int(n) for n in args.universe_sizes.split(","))))

    width = max([len("measure"), *map(len, results)])
    print(f"\n{'measure':<{width}} {'value':>9}   ({os.cpu_count()} CPUs; seconds unless marked)")
    for name, value in results.items():
        print(f"{name:<{width}} {value:9.3f}" if value < 10 else f"{name:<{width}} {value:9.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "results": results,
                "pipeline_samples": samples,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "data": str(args.data),
            },
            indent=2,
        )
    )
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
