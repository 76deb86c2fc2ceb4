"""The driver behind ``main``: runs every step with ``mlflow.run``, chained by run URIs.

Each step run is created here first, already a child of the main run, so the
UI shows one pipeline as one tree from the moment a step starts; the step
process then fills that run in (``mlflow.run(..., run_id=...)``).

Before launching a step the driver looks for a finished run with the same
cache key (see :mod:`psystock.caching`) and reuses it instead.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Run
from mlflow.utils import env_manager as env_managers

from psystock import PsystockError, caching, forking, handover, names, signal_process
from psystock.data import parse_day
from psystock.entry_points import PROJECT_ROOT, StepArgs, load_entry_points, to_params
from psystock.features import DEFAULT_FEATURES, check_feature_set
from psystock.mlflow_io import cache_store, champion, forkserver, lifecycle
from psystock.mlflow_io.inputs import load_run_dict
from psystock.mlflow_io.launch import Launch, Launched, create_run, launch
from psystock.models import BOOK_FAMILIES, GENERIC_ENTRY_POINT, FamilyInfo, choose_families, family_info
from psystock.names import STORE
from psystock.scores import score
from psystock.validation import (
    Protocol,
    check_backtest,
    check_bootstrap,
    check_cv_folds,
    check_min_improvement,
    check_search,
    check_seed,
    check_split,
    check_window,
)

log = logging.getLogger("psystock.main")

_BEFORE_TRAINING = ("fetch_data", "build_features")
_AFTER_TRAINING = ("baselines", "compare", "tune", "register", "report", "predict", "monitor")


def step_names(families: tuple[str, ...] = BOOK_FAMILIES) -> tuple[str, ...]:
    """The steps of a pipeline over ``families``, as ``rerun`` names them: a family's training
    step is ``train_<family>``, a plugin's too (it runs the generic ``train``)."""
    return (*_BEFORE_TRAINING, *(f"train_{name}" for name in families), *_AFTER_TRAINING)


STEP_NAMES = step_names()  # the steps of a pipeline over the default families


def entry_points_of(families: tuple[str, ...]) -> tuple[str, ...]:
    """The entry points a pipeline over ``families`` runs."""
    trainings = dict.fromkeys(family_info(name).entry_point for name in families)
    return (*_BEFORE_TRAINING, *trainings, *_AFTER_TRAINING)


def family_code(name: str) -> tuple[str, ...]:
    """The files of a family's code, for the cache keys of the steps that load it by name
    (``train``, ``tune``, ``register``): an edit of the family re-runs them, and only them."""
    from psystock.models import source_files

    files: set[Path] = set()
    for path in source_files(family_info(name)):
        files.update(caching.code_files(path))
    return tuple(str(path) for path in sorted(files))


@dataclass(frozen=True, kw_only=True)
class PipelineSettings(Protocol):
    """Every parameter of a pipeline but its ticker: main's own, and the universe's for each ticker.

    The steps' parameters reach them by name (see :func:`forwarded`); the
    driver's own are :data:`DRIVER_ONLY`.
    """

    start: str = "2014-01-01"
    end: str = "2020-12-31"
    source: str = STORE
    features: str = DEFAULT_FEATURES
    window: int = 14
    threshold: float = 0.00001
    families: str = ",".join(BOOK_FAMILIES)
    keras_epochs: int = 20
    max_evals: int = 10
    early_stop: int = 0
    tune_timeout: float = 0.0
    tune_parallelism: int = 0
    spark_master: str = ""
    min_improvement: float = 0.0
    env_manager: str = "local"
    launcher: str = names.FORKSERVER
    use_cache: str = "true"
    rerun: str = ""
    max_parallel: int = 0


@dataclass(frozen=True, kw_only=True)
class MainArgs(StepArgs, PipelineSettings):
    """The parameters of ``main``: a pipeline's settings and its ticker."""

    entry_point = "main"
    ticker: str = "BTC-USD"


# main's parameters that reach a step under another name: main's name -> (step, the step's name).
RENAMED = {
    "keras_epochs": ("train_keras", "epochs"),
    "tune_timeout": ("tune", "timeout"),
    "tune_parallelism": ("tune", "parallelism"),
}
# main's parameters that configure the driver itself and reach no step.
DRIVER_ONLY = ("families", "env_manager", "launcher", "use_cache", "rerun", "max_parallel")
# Step parameters that main could forward but that a wired input supersedes: predict and
# monitor read the bars fetch_data fetched (their ``prices``), so main's ``source`` is not theirs.
SUPERSEDED = {("predict", "source"), ("monitor", "source")}


def forwarded(
    entry_point: str, main_params: dict[str, str], entry_points: dict[str, Any] | None = None
) -> dict[str, str]:
    """The values of ``main_params`` that ``entry_point`` takes: the same name, or a :data:`RENAMED` one."""
    declared = (entry_points or load_entry_points())[entry_point].get("parameters") or {}
    by_step_name = {name: name for name in main_params if name not in RENAMED and name not in DRIVER_ONLY}
    by_step_name |= {
        step_name: name for name, (step, step_name) in RENAMED.items() if step == entry_point and name in main_params
    }
    return {
        name: main_params[source]
        for name, source in by_step_name.items()
        if name in declared and (entry_point, name) not in SUPERSEDED
    }


@dataclass(frozen=True)
class Step:
    """An entry point to run, or reuse, as a child run of the driver's run."""

    entry_point: str
    params: dict[str, str]
    run_name: str | None = None
    inputs: str = ""  # identity of non-run inputs, for the cache key
    label: str = ""  # what the driver calls it: the entry point, or a universe's ticker
    tags: dict[str, str] = field(default_factory=dict)  # more tags for its run
    code_of: tuple[str, ...] = ()  # the entry points whose code it runs; default: its own
    code_files: tuple[str, ...] = ()  # code it loads by name (a family's module), also in its key

    @property
    def name(self) -> str:
        return self.label or self.entry_point


class StepStatus(StrEnum):
    """Where a step of one pipeline stands."""

    RUNNING = "running"
    FINISHED = "finished"
    CACHED = "cached"
    FAILED = "FAILED"


@dataclass
class Outcome:
    name: str  # the step's label (its entry point, or a universe's ticker)
    status: StepStatus
    run_id: str
    seconds: float | None = None  # wall time of a step that ran
    saved: float = 0.0  # for a cached step: how long the reused run took
    error: str = ""  # a failed step's error line


# Runs launches elsewhere (a universe's pipelines as Spark tasks) instead of threads here.
RemoteLauncher = Callable[[list[Launch]], list[Launched]]


@dataclass
class StepRunner:
    """Launches entry points of this project as child runs of ``parent_run_id``.

    ``project_uri`` and ``version`` name the project for launches elsewhere
    (a Git URL and commit); steps launched here run from ``project_dir``.
    """

    experiment_id: str
    parent_run_id: str
    env_manager: str = "local"
    launcher: str = names.SUBPROCESS
    project_dir: str = str(PROJECT_ROOT)
    use_cache: bool = True
    rerun: frozenset[str] = frozenset()
    max_parallel: int = 1
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    remote: RemoteLauncher | None = None
    families: tuple[str, ...] = ()  # the pipeline's: their own servers start with its first launch
    project_uri: str = ""
    version: str | None = None

    @property
    def _warm(self) -> bool:
        """Whether steps fork from warm servers (:mod:`psystock.forking`)."""
        return self.launcher == names.FORKSERVER and self.env_manager == "local" and self.remote is None

    def _warm_up(self) -> None:
        """Start the servers the steps of :attr:`families` fork from."""
        if self._warm:
            families = {family_info(f).preload for f in self.families} - {()}
            forking.warm_up(families | {forking.STEP_PRELOAD})  # and the server of every other step

    def run(self, step: Step) -> str:
        """Run (or reuse) one step; its run id, or an error naming the step."""
        return self.run_many([step])[step.name]

    def run_many(self, steps: list[Step]) -> dict[str, str]:
        """Run independent steps, at most ``max_parallel`` at a time; then fail if any failed."""
        self.start(steps)
        failed = [o for o in (self.outcomes[s.name] for s in steps) if o.status is StepStatus.FAILED]
        if failed:
            which = "; ".join(f"{o.error or o.name} (run {o.run_id})" for o in failed)
            raise PsystockError(f"step failed: {which}")
        return {s.name: self.outcomes[s.name].run_id for s in steps}

    def start(self, steps: list[Step]) -> None:
        """Run or reuse every step and wait for them all; a failure is an outcome, not an exception.

        Each launch here is a synchronous ``mlflow.run`` in its own thread:
        the step process starts at once, where an asynchronous ``mlflow.run``
        would first start another ``mlflow run`` process to host it.
        """
        entry_points = load_entry_points()
        to_launch = []
        for step in steps:
            params = caching.resolved_params(step.entry_point, step.params, entry_points)
            code = caching.code_digest_of(
                step.code_of or (step.entry_point,), Path(self.project_dir), tuple(map(Path, step.code_files))
            )
            key = caching.cache_key(step.entry_point, params, code, step.inputs)
            why = self._reuse_or_reason(step, key, params, code, entry_points)
            if why is not None:
                to_launch.append((step, self._spec(step, cache_store.cache_tags(key, code, step.inputs)), why))
        if self.remote is not None and to_launch:
            self._launch_remotely(to_launch)
            return
        if to_launch:
            self._warm_up()  # with the first launch; then already running
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_parallel, len(to_launch)))) as pool:
            try:
                list(pool.map(lambda item: self._launch(*item), to_launch))
            except lifecycle.Interrupted as stop:
                self._stop_launched(pool, stop)
                raise

    def _stop_launched(self, pool: ThreadPoolExecutor, stop: lifecycle.Interrupted) -> None:
        """Told to stop while steps run: pass the signal on to them, wait until they have ended
        their runs, and end FAILED any run of a step that never got as far as its own."""
        log.warning("stopped by %s: stopping the steps that run", stop.name)
        forkserver.signal_steps(stop.signum)
        if not self._warm:
            self._signal_new_interpreters(stop.signum)
        pool.shutdown(wait=True, cancel_futures=True)
        for outcome in self.outcomes.values():
            if outcome.status is StepStatus.RUNNING:
                lifecycle.end_stopped(outcome.run_id, f"{outcome.name}: stopped by {stop.name} before it began")

    def _signal_new_interpreters(self, signum: int, patience: float = 30.0) -> None:
        """Pass ``signum`` on to each running step that MLflow's local backend started as a new
        interpreter (``launcher=subprocess``): the process its run names once it has begun it
        (``psystock.process``), waiting up to ``patience`` seconds for a step still starting."""
        client = mlflow.MlflowClient()
        waiting = {o.run_id for o in list(self.outcomes.values()) if o.status is StepStatus.RUNNING}
        deadline = time.monotonic() + patience
        while waiting and time.monotonic() < deadline:
            for run_id in sorted(waiting):
                run = client.get_run(run_id)
                process = run.data.tags.get(names.TAG_PROCESS, "")
                if run.info.status == lifecycle.RUNNING and not process:
                    continue  # its interpreter is still starting
                waiting.discard(run_id)
                if run.info.status == lifecycle.RUNNING:
                    signal_process(process, signum)
            if waiting:
                time.sleep(0.2)

    def _spec(self, step: Step, cache_tags: dict[str, str]) -> Launch:
        run_name = step.run_name or step.entry_point
        tags = {
            **lifecycle.step_run_tags(
                self.parent_run_id, step.entry_point, run_name, self.project_dir, self.project_uri, self.version
            ),
            **cache_tags,
            **step.tags,
        }
        warm = self._warm
        tags[names.TAG_LAUNCHER] = names.FORKSERVER if warm else names.SUBPROCESS
        return Launch(
            uri=self.project_uri or self.project_dir,
            entry_point=step.entry_point,
            parameters=step.params,
            experiment_id=self.experiment_id,
            tracking_uri=mlflow.get_tracking_uri(),
            run_name=run_name,
            tags=tags,
            version=self.version,
            env_manager=self.env_manager,
            backend=names.FORKSERVER_BACKEND if warm else "local",
        )

    def _reuse_or_reason(
        self, step: Step, key: str, params: dict[str, str], code: str, entry_points: dict[str, Any]
    ) -> str | None:
        """None if a finished run with this key is reused (and linked); otherwise why the step must run."""
        entry_point = step.entry_point
        if not self.use_cache:
            return "use_cache is off"
        if step.name in self.rerun or entry_point in self.rerun:
            return "rerun names it"
        run, missing = cache_store.find_cached_run(self.experiment_id, key, entry_point)
        if run is not None and not missing:
            run_name = f"{step.run_name or entry_point} (cached)"
            lifecycle.link_cached_run(self.experiment_id, self.parent_run_id, entry_point, run, run_name, step.tags)
            saved = (run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else 0.0
            self.outcomes[step.name] = Outcome(step.name, StepStatus.CACHED, run.info.run_id, saved=saved)
            log.info("%s: cached (run %s)", step.name, run.info.run_id)
            return None
        if run is not None:
            return f"cache miss: run {run.info.run_id} lacks {', '.join(missing)}"
        previous = cache_store.latest_step_run(self.experiment_id, entry_point, step.tags)
        if previous is None:
            return "no earlier run of this step"
        return f"changed since run {previous.info.run_id}: {self._changes(previous, step, params, code, entry_points)}"

    @staticmethod
    def _changes(previous: Run, step: Step, params: dict[str, str], code: str, entry_points: dict[str, Any]) -> str:
        tags = previous.data.tags
        recorded = names.TAG_CODE_DIGEST in tags  # runs from before these tags cannot tell
        changes = caching.describe_changes(
            caching.resolved_params(step.entry_point, previous.data.params, entry_points),
            params,
            code_changed=recorded and tags[names.TAG_CODE_DIGEST] != code,
            inputs_changed=recorded and tags.get(names.TAG_INPUTS, "") != step.inputs,
        )
        return ", ".join(changes) or "cache key"

    def _launch(self, step: Step, spec: Launch, why: str) -> None:
        run_id = create_run(spec)
        self.outcomes[step.name] = Outcome(step.name, StepStatus.RUNNING, run_id)
        log.info("%s: running (run %s), %s", step.name, run_id, why)
        self._record(step, launch(spec, run_id))

    def _launch_remotely(self, to_launch: list[tuple[Step, Launch, str]]) -> None:
        assert self.remote is not None
        for step, _, why in to_launch:
            log.info("%s: queued, %s", step.name, why)
        results = self.remote([spec for _, spec, _ in to_launch])
        for (step, _, _), result in zip(to_launch, results, strict=True):
            self._record(step, result)

    def _record(self, step: Step, result: Launched) -> None:
        status = StepStatus.FINISHED if result.ok else StepStatus.FAILED
        self.outcomes[step.name] = Outcome(step.name, status, result.run_id, result.seconds, error=result.error)
        if result.ok:
            log.info("%s: finished (run %s) in %.1f s", step.name, result.run_id, result.seconds)
        else:
            log.error("%s: FAILED (run %s): %s", step.name, result.run_id or "none", result.error)

    def run_ids(self) -> dict[str, str]:
        """Label -> the run id of each step so far (a reused one for a cached step)."""
        return {name: outcome.run_id for name, outcome in self.outcomes.items()}

    def cached(self) -> list[str]:
        """The steps that reused an earlier run."""
        return [name for name, outcome in self.outcomes.items() if outcome.status is StepStatus.CACHED]

    def summary(self) -> str:
        """One line per step: its outcome, run id and the wall time it took (or, cached, saved);
        then the totals."""
        lines = []
        for o in self.outcomes.values():
            took = f"  {o.seconds:.1f} s" if o.seconds is not None else f"  saved {o.saved:.1f} s" if o.saved else ""
            lines.append(f"  {o.name:<15} {o.status:<9} run {o.run_id}{took}")
        cached = [self.outcomes[name] for name in self.cached()]
        if cached:
            lines.append(
                f"  {len(cached)} of {len(self.outcomes)} steps reused earlier runs, "
                f"saving {sum(o.saved for o in cached):.1f} s of step time"
            )
        return "\n".join(lines)


def keep_launches_cold(launcher: str) -> None:
    """``launcher=subprocess`` starts each step (or a universe's each pipeline) as a new interpreter
    that imports everything itself: no warm server (:mod:`psystock.warm`) takes them over."""
    if launcher == names.SUBPROCESS:
        os.environ[handover.NAME] = handover.OFF


def check_settings(settings: PipelineSettings, spark_master: str | None = None) -> None:
    """Refuse bad pipeline settings before any step runs. ``spark_master``: the one tuning will
    use, when not the settings' own (a universe's pipelines tune in their own process)."""
    check_split(settings.split, settings.test_size)
    check_seed(settings.seed)
    check_window(settings.window)
    check_feature_set(settings.features)
    score(settings.metric)
    check_bootstrap(settings.confidence, settings.block_length)
    check_backtest(settings.strategy, settings.cost_bps)
    tuning_master = settings.spark_master if spark_master is None else spark_master
    check_search(
        settings.max_evals, settings.early_stop, settings.tune_timeout, settings.tune_parallelism, tuning_master
    )
    check_cv_folds(settings.cv_folds)
    check_min_improvement(settings.min_improvement)
    choose_families(settings.families)
    managers = (env_managers.LOCAL, env_managers.VIRTUALENV, env_managers.UV, env_managers.CONDA)
    if settings.env_manager not in managers:
        raise PsystockError(f"env_manager must be one of {', '.join(managers)}, got {settings.env_manager!r}")
    if settings.launcher not in (names.FORKSERVER, names.SUBPROCESS):
        raise PsystockError(f"launcher must be {names.FORKSERVER} or {names.SUBPROCESS}, got {settings.launcher!r}")
    if settings.use_cache.lower() not in ("true", "false"):
        raise PsystockError(f"use_cache must be true or false, got {settings.use_cache!r}")
    if settings.max_parallel < 0:
        raise PsystockError(f"max_parallel must be 0 (one per CPU) or more, got {settings.max_parallel}")


def parse_rerun(text: str, families: tuple[str, ...] = BOOK_FAMILIES) -> frozenset[str]:
    """Steps named in ``rerun`` (comma-separated, or ``all``) of a pipeline over ``families``."""
    steps = step_names(families)
    chosen = {n.strip() for n in text.split(",") if n.strip()}
    if "all" in chosen:
        return frozenset(steps)
    unknown = sorted(chosen - set(steps))
    if unknown:
        raise PsystockError(f"rerun names unknown steps {', '.join(unknown)}; steps are {', '.join(steps)}")
    return frozenset(chosen)


def run_pipeline(args: MainArgs, runner: StepRunner, today: date | None = None) -> dict[str, str]:
    """fetch_data -> build_features -> trainings and baselines (concurrently) -> compare
    -> tune(best model family) -> register (if it beats the baselines) -> predict (if a champion exists).

    Every step gets main's parameters it declares (:func:`forwarded`) and the
    ``runs:/`` URIs of the steps before it. Returns the run id of every step
    (a reused one for a cached step), by entry point.
    """
    main_params = to_params(args)

    def step(
        entry_point: str, wired: dict[str, str], run_name: str | None = None, inputs: str = "", family: str = ""
    ) -> Step:
        # Tagged with the ticker (and family): "changed since" compares with this ticker's last
        # run of the same step.
        params = forwarded(entry_point, main_params) | wired
        tags = {names.TAG_TICKER: args.ticker} | ({names.TAG_FAMILY: family} if family else {})
        code = family_code(family) if family else ()
        label = f"train_{family}" if entry_point == GENERIC_ENTRY_POINT else ""
        return Step(entry_point, params, run_name, inputs, label, tags, code_files=code)

    def training(info: FamilyInfo) -> Step:
        plugin = {"family": info.name} if info.entry_point == GENERIC_ENTRY_POINT else {}
        return step(info.entry_point, training_data | plugin, info.run_name, family=info.name)

    # Steps run with this interpreter: `python` in an entry point's command must
    # be the environment main itself runs in, whatever PATH said before.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

    inputs = caching.source_identity(args.source, parse_day(args.end, "end"), today or date.today())
    fetch = runner.run(step("fetch_data", {"min_rows": str(args.window + 1)}, inputs=inputs))
    prices = names.run_uri(fetch, names.PRICES_DIR)
    watched = champion.champion_refit_end(args.ticker)
    if watched is not None and watched[1] < args.end:
        # The champion as it stands before this run's gate, on the days after its refit range; the
        # version enters the cache key: a new champion is watched anew.
        runner.run(step("monitor", {"prices": prices}, inputs=watched[0]))
    else:
        log.info("monitor: skipped, %s has no champion with days after its refit range", args.ticker)
    features = runner.run(step("build_features", {"prices": prices}))
    training_data = {"training_data": names.run_uri(features, names.FEATURES_DIR)}
    families = [family_info(name) for name in choose_families(args.families)]
    # Costliest first: with fewer workers than steps, the long one must not wait.
    trainings = [training(f) for f in sorted(families, key=lambda f: -f.cost)]
    scored = runner.run_many([*trainings, step("baselines", training_data)])
    candidates = [scored[f.label] for f in families]
    candidates += load_run_dict(scored["baselines"], names.BASELINES_FILE).values()
    compare = runner.run(step("compare", {"training_runs": ",".join(candidates)}))
    winner = lifecycle.get_run(compare).data.tags[names.TAG_WINNER_FAMILY]
    log.info("compare: winning family %s", winner)
    tune = runner.run(step("tune", training_data | {"family": winner}, family=winner))
    register = runner.run(step("register", {"tuned_run": tune, "compare_run": compare}, family=winner))
    runner.run(step("report", {"compare_run": compare, "tuned_run": tune, "register_run": register}))
    current = champion.champion_uri(args.ticker)
    if current is None:
        log.info("predict: skipped, %s has no champion yet", names.model_name(args.ticker))
    else:
        # The version, not the alias, enters the cache key: a new champion must predict anew.
        runner.run(step("predict", {"model_uri": current, "prices": prices}))
    return runner.run_ids()


def record(args: MainArgs, steps: dict[str, str]) -> None:
    """Put the pipeline's answer on main's run: the winning family, the registry's decision and
    the report's verdict, the champion, and the tuned model's scores."""
    tuned = lifecycle.get_run(steps["tune"])
    verdict = lifecycle.get_run(steps["report"]).data.tags.get(names.TAG_VERDICT, "")
    mlflow.set_tags(
        {
            names.TAG_WINNER_FAMILY: lifecycle.get_run(steps["compare"]).data.tags[names.TAG_WINNER_FAMILY],
            names.TAG_REGISTRY_DECISION: lifecycle.get_run(steps["register"]).data.tags[names.TAG_DECISION],
            names.TAG_VERDICT: verdict,
            names.TAG_CHAMPION: champion.champion_uri(args.ticker) or names.NO_CHAMPION,
            names.TAG_NOTE: names.pipeline_note(verdict, steps["report"]),
        }
    )
    copied = (
        names.test_metric(args.metric),
        names.ci_low(args.metric),
        names.ci_high(args.metric),
        names.best_cv(args.metric),
    )
    mlflow.log_metrics({names.tuned_metric(m): tuned.data.metrics[m] for m in copied if m in tuned.data.metrics})
