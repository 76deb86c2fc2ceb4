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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import ExecutionException

from psystock import PsystockError, caching, registry
from psystock.data import YAHOO, parse_day
from psystock.entry_points import PROJECT_ROOT, StepArgs, load_entry_points, to_params
from psystock.features import FeatureSetName
from psystock.mlflow_io import cache_store, lifecycle, names
from psystock.mlflow_io.inputs import load_run_dict
from psystock.models import FAMILIES
from psystock.scores import DEFAULT_METRIC
from psystock.validation import Split, Strategy

log = logging.getLogger("psystock.main")

STEP_NAMES = (
    "fetch_data",
    "build_features",
    *(f.entry_point for f in FAMILIES.values()),
    "baselines",
    "compare",
    "tune",
    "register",
    "report",
    "predict",
)


@dataclass(frozen=True, kw_only=True)
class MainArgs(StepArgs):
    """The parameters of ``main``: the steps' own (forwarded by name, see :func:`forwarded`)
    and the driver's (:data:`DRIVER_ONLY`)."""

    entry_point = "main"
    ticker: str = "BTC-USD"
    start: str = "2014-01-01"
    end: str = "2020-12-31"
    source: str = YAHOO
    features: FeatureSetName = FeatureSetName.UPDOWN
    window: int = 14
    threshold: float = 0.00001
    split: Split = Split.CHRONOLOGICAL
    test_size: float = 0.33
    seed: int = 4284
    cv_folds: int = 5
    metric: str = DEFAULT_METRIC
    confidence: float = 0.95
    block_length: int = 0
    strategy: Strategy = Strategy.LONG_FLAT
    cost_bps: float = 10.0
    keras_epochs: int = 20
    max_evals: int = 10
    early_stop: int = 0
    tune_timeout: float = 0.0
    tune_parallelism: int = 0
    spark_master: str = ""
    min_improvement: float = 0.0
    env_manager: str = "local"
    use_cache: str = "true"
    rerun: str = ""
    max_parallel: int = 0


# main's parameters that reach a step under another name: main's name -> (step, the step's name).
RENAMED = {
    "keras_epochs": ("train_keras", "epochs"),
    "tune_timeout": ("tune", "timeout"),
    "tune_parallelism": ("tune", "parallelism"),
}
# main's parameters that configure the driver itself and reach no step.
DRIVER_ONLY = ("env_manager", "use_cache", "rerun", "max_parallel")
# Step parameters that main could forward but that a wired input supersedes: predict
# reads the bars fetch_data fetched (its ``prices``), so main's ``source`` is not its.
SUPERSEDED = {("predict", "source")}


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
    entry_point: str
    params: dict[str, str]
    run_name: str | None = None
    inputs: str = ""  # identity of non-run inputs, for the cache key


class StepStatus(StrEnum):
    """Where a step of one pipeline stands."""

    RUNNING = "running"
    FINISHED = "finished"
    CACHED = "cached"
    FAILED = "FAILED"


@dataclass
class Outcome:
    entry_point: str
    status: StepStatus
    run_id: str
    seconds: float | None = None  # wall time of a step that ran
    saved: float = 0.0  # for a cached step: how long the reused run took


@dataclass
class StepRunner:
    """Launches entry points of this project as child runs of ``parent_run_id``."""

    experiment_id: str
    parent_run_id: str
    env_manager: str = "local"
    project_dir: str = str(PROJECT_ROOT)
    use_cache: bool = True
    rerun: frozenset[str] = frozenset()
    max_parallel: int = 1
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def run(self, step: Step) -> str:
        """Run (or reuse) one step; its run id, or an error naming the step."""
        return self.run_many([step])[step.entry_point]

    def run_many(self, steps: list[Step]) -> dict[str, str]:
        """Run independent steps, at most ``max_parallel`` at a time.

        Waits for all of them, then fails if any failed. Each launch is a
        synchronous ``mlflow.run`` in its own thread: the step process starts
        at once, where an asynchronous ``mlflow.run`` would first start
        another ``mlflow run`` process to host it.
        """
        entry_points = load_entry_points()
        to_launch = []
        for step in steps:
            params = caching.resolved_params(step.entry_point, step.params, entry_points)
            code = caching.code_digest(step.entry_point, Path(self.project_dir))
            key = caching.cache_key(step.entry_point, params, code, step.inputs)
            why = self._reuse_or_reason(step, key, params, code, entry_points)
            if why is not None:
                to_launch.append((step, cache_store.cache_tags(key, code, step.inputs), why))
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_parallel, len(to_launch)))) as pool:
            list(pool.map(lambda item: self._launch(*item), to_launch))
        failed = [o for o in (self.outcomes[s.entry_point] for s in steps) if o.status is StepStatus.FAILED]
        if failed:
            which = ", ".join(f"{o.entry_point} (run {o.run_id})" for o in failed)
            raise PsystockError(f"step failed: {which}; see its output above")
        return {s.entry_point: self.outcomes[s.entry_point].run_id for s in steps}

    def _reuse_or_reason(
        self, step: Step, key: str, params: dict[str, str], code: str, entry_points: dict[str, Any]
    ) -> str | None:
        """None if a finished run with this key is reused (and linked); otherwise why the step must run."""
        entry_point = step.entry_point
        if not self.use_cache:
            return "use_cache is off"
        if entry_point in self.rerun:
            return "rerun names it"
        run, missing = cache_store.find_cached_run(self.experiment_id, key, entry_point)
        if run is not None and not missing:
            lifecycle.link_cached_run(self.experiment_id, self.parent_run_id, entry_point, run)
            saved = (run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else 0.0
            self.outcomes[entry_point] = Outcome(entry_point, StepStatus.CACHED, run.info.run_id, saved=saved)
            log.info("%s: cached (run %s)", entry_point, run.info.run_id)
            return None
        if run is not None:
            return f"cache miss: run {run.info.run_id} lacks {', '.join(missing)}"
        previous = cache_store.latest_step_run(self.experiment_id, entry_point)
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

    def _launch(self, step: Step, tags: dict[str, str], why: str) -> None:
        run_id = lifecycle.create_step_run(
            self.experiment_id,
            self.parent_run_id,
            step.entry_point,
            step.run_name or step.entry_point,
            tags=tags,
            project_dir=self.project_dir,
        )
        self.outcomes[step.entry_point] = Outcome(step.entry_point, StepStatus.RUNNING, run_id)
        log.info("%s: running (run %s), %s", step.entry_point, run_id, why)
        started = time.perf_counter()
        try:
            mlflow.projects.run(
                self.project_dir,
                entry_point=step.entry_point,
                parameters=step.params,
                experiment_id=self.experiment_id,
                run_id=run_id,
                env_manager=self.env_manager,
                synchronous=True,
            )
        except ExecutionException as exc:
            log.error("%s: FAILED (run %s): %s", step.entry_point, run_id, exc)
            lifecycle.fail_if_running(run_id)
            seconds = time.perf_counter() - started
            self.outcomes[step.entry_point] = Outcome(step.entry_point, StepStatus.FAILED, run_id, seconds)
            return
        seconds = time.perf_counter() - started
        self.outcomes[step.entry_point] = Outcome(step.entry_point, StepStatus.FINISHED, run_id, seconds)
        log.info("%s: finished (run %s) in %.1f s", step.entry_point, run_id, seconds)

    def run_ids(self) -> dict[str, str]:
        """Entry point -> the run id of each step so far (a reused one for a cached step)."""
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
            lines.append(f"  {o.entry_point:<15} {o.status:<9} run {o.run_id}{took}")
        cached = [self.outcomes[name] for name in self.cached()]
        if cached:
            lines.append(
                f"  {len(cached)} of {len(self.outcomes)} steps reused earlier runs, "
                f"saving {sum(o.saved for o in cached):.1f} s of step time"
            )
        return "\n".join(lines)


def parse_rerun(text: str) -> frozenset[str]:
    """Entry points named in ``rerun`` (comma-separated, or ``all``)."""
    chosen = {n.strip() for n in text.split(",") if n.strip()}
    if "all" in chosen:
        return frozenset(STEP_NAMES)
    unknown = sorted(chosen - set(STEP_NAMES))
    if unknown:
        raise PsystockError(f"rerun names unknown steps {', '.join(unknown)}; steps are {', '.join(STEP_NAMES)}")
    return frozenset(chosen)


def run_pipeline(args: MainArgs, runner: StepRunner, today: date | None = None) -> dict[str, str]:
    """fetch_data -> build_features -> trainings and baselines (concurrently) -> compare
    -> tune(best model family) -> register (if it beats the baselines) -> predict (if a champion exists).

    Every step gets main's parameters it declares (:func:`forwarded`) and the
    ``runs:/`` URIs of the steps before it. Returns the run id of every step
    (a reused one for a cached step), by entry point.
    """
    main_params = to_params(args)

    def step(entry_point: str, wired: dict[str, str], run_name: str | None = None, inputs: str = "") -> Step:
        return Step(entry_point, forwarded(entry_point, main_params) | wired, run_name, inputs)

    # Steps run with this interpreter: `python` in an entry point's command must
    # be the environment main itself runs in, whatever PATH said before.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

    inputs = caching.source_identity(args.source, parse_day(args.end, "end"), today or date.today())
    fetch = runner.run(step("fetch_data", {"min_rows": str(args.window + 1)}, inputs=inputs))
    prices = names.run_uri(fetch, names.PRICES_DIR)
    features = runner.run(step("build_features", {"prices": prices}))
    training_data = {"training_data": names.run_uri(features, names.FEATURES_DIR)}
    # Costliest first: with fewer workers than steps, the long one must not wait.
    families = sorted(FAMILIES.values(), key=lambda f: -f.cost)
    scored = runner.run_many(
        [step(f.entry_point, training_data, f.run_name) for f in families] + [step("baselines", training_data)]
    )
    candidates = [scored[f.entry_point] for f in FAMILIES.values()]
    candidates += load_run_dict(scored["baselines"], names.BASELINES_FILE).values()
    compare = runner.run(step("compare", {"training_runs": ",".join(candidates)}))
    winner = lifecycle.get_run(compare).data.tags[names.TAG_WINNER_FAMILY]
    log.info("compare: winning family %s", winner)
    tune = runner.run(step("tune", training_data | {"family": winner}))
    register = runner.run(step("register", {"tuned_run": tune, "compare_run": compare}))
    runner.run(step("report", {"compare_run": compare, "tuned_run": tune, "register_run": register}))
    champion = registry.champion_uri(args.ticker)
    if champion is None:
        log.info("predict: skipped, %s has no champion yet", names.model_name(args.ticker))
    else:
        # The version, not the alias, enters the cache key: a new champion must predict anew.
        runner.run(step("predict", {"model_uri": champion, "prices": prices}))
    return runner.run_ids()


def record(args: MainArgs, steps: dict[str, str]) -> None:
    """Put the pipeline's answer on main's run: the winning family, the registry's decision and
    the report's verdict, the champion, and the tuned model's scores."""
    tuned = lifecycle.get_run(steps["tune"])
    mlflow.set_tags(
        {
            names.TAG_WINNER_FAMILY: lifecycle.get_run(steps["compare"]).data.tags[names.TAG_WINNER_FAMILY],
            names.TAG_REGISTRY_DECISION: lifecycle.get_run(steps["register"]).data.tags[names.TAG_DECISION],
            names.TAG_VERDICT: lifecycle.get_run(steps["report"]).data.tags.get(names.TAG_VERDICT, ""),
            names.TAG_CHAMPION: registry.champion_uri(args.ticker) or names.NO_CHAMPION,
        }
    )
    copied = (
        names.test_metric(args.metric),
        names.ci_low(args.metric),
        names.ci_high(args.metric),
        names.best_cv(args.metric),
    )
    mlflow.log_metrics({names.tuned_metric(m): tuned.data.metrics[m] for m in copied if m in tuned.data.metrics})
