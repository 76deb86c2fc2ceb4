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
from pathlib import Path

import mlflow
from mlflow.exceptions import ExecutionException

from psystock import PsystockError, caching, registry, tracking
from psystock.cli import PROJECT_ROOT, StepArgs, load_entry_points
from psystock.data import parse_day
from psystock.models import FAMILIES

log = logging.getLogger("psystock.main")

STEP_NAMES = (
    "fetch_data", "build_features", *(f.entry_point for f in FAMILIES.values()), "baselines", "compare", "tune",
    "register", "predict",
)


@dataclass(frozen=True)
class Step:
    entry_point: str
    params: dict[str, str]
    run_name: str | None = None
    inputs: str = ""  # identity of non-run inputs, for the cache key


@dataclass
class Outcome:
    entry_point: str
    status: str  # "finished", "cached" or "FAILED"
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
                to_launch.append((step, tracking.cache_tags(key, code, step.inputs), why))
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_parallel, len(to_launch)))) as pool:
            list(pool.map(lambda item: self._launch(*item), to_launch))
        failed = [o for o in (self.outcomes[s.entry_point] for s in steps) if o.status == "FAILED"]
        if failed:
            names = ", ".join(f"{o.entry_point} (run {o.run_id})" for o in failed)
            raise PsystockError(f"step failed: {names}; see its output above")
        return {s.entry_point: self.outcomes[s.entry_point].run_id for s in steps}

    def _reuse_or_reason(
        self, step: Step, key: str, params: dict[str, str], code: str, entry_points: dict
    ) -> str | None:
        """None if a finished run with this key is reused (and linked); otherwise why the step must run."""
        entry_point = step.entry_point
        if not self.use_cache:
            return "use_cache is off"
        if entry_point in self.rerun:
            return "rerun names it"
        run, missing = tracking.find_cached_run(self.experiment_id, key, entry_point)
        if run is not None and not missing:
            tracking.link_cached_run(self.experiment_id, self.parent_run_id, entry_point, run)
            saved = (run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else 0.0
            self.outcomes[entry_point] = Outcome(entry_point, "cached", run.info.run_id, saved=saved)
            log.info("%s: cached (run %s)", entry_point, run.info.run_id)
            return None
        if run is not None:
            return f"cache miss: run {run.info.run_id} lacks {', '.join(missing)}"
        previous = tracking.latest_step_run(self.experiment_id, entry_point)
        if previous is None:
            return "no earlier run of this step"
        tags = previous.data.tags
        recorded = tracking.TAG_CODE_DIGEST in tags  # runs from before these tags cannot tell
        changes = caching.describe_changes(
            caching.resolved_params(entry_point, previous.data.params, entry_points), params,
            code_changed=recorded and tags[tracking.TAG_CODE_DIGEST] != code,
            inputs_changed=recorded and tags.get(tracking.TAG_INPUTS, "") != step.inputs,
        )
        return f"changed since run {previous.info.run_id}: {', '.join(changes) or 'cache key'}"

    def _launch(self, step: Step, tags: dict[str, str], why: str) -> None:
        run_id = tracking.create_step_run(
            self.experiment_id, self.parent_run_id, step.entry_point, step.run_name or step.entry_point,
            tags=tags, project_dir=self.project_dir,
        )
        self.outcomes[step.entry_point] = Outcome(step.entry_point, "running", run_id)
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
            tracking.fail_if_running(run_id)
            self.outcomes[step.entry_point] = Outcome(step.entry_point, "FAILED", run_id, time.perf_counter() - started)
            return
        seconds = time.perf_counter() - started
        self.outcomes[step.entry_point] = Outcome(step.entry_point, "finished", run_id, seconds)
        log.info("%s: finished (run %s) in %.1f s", step.entry_point, run_id, seconds)

    def summary(self) -> str:
        """One line per step: its outcome, run id and the wall time it took (or, cached, saved);
        then the totals."""
        lines = []
        for o in self.outcomes.values():
            took = f"  {o.seconds:.1f} s" if o.seconds is not None else f"  saved {o.saved:.1f} s" if o.saved else ""
            lines.append(f"  {o.entry_point:<15} {o.status:<9} run {o.run_id}{took}")
        cached = [o for o in self.outcomes.values() if o.status == "cached"]
        if cached:
            lines.append(f"  {len(cached)} of {len(self.outcomes)} steps reused earlier runs, "
                         f"saving {sum(o.saved for o in cached):.1f} s of step time")
        return "\n".join(lines)


def parse_rerun(text: str) -> frozenset[str]:
    """Entry points named in ``rerun`` (comma-separated, or ``all``)."""
    names = {n.strip() for n in text.split(",") if n.strip()}
    if "all" in names:
        return frozenset(STEP_NAMES)
    unknown = sorted(names - set(STEP_NAMES))
    if unknown:
        raise PsystockError(f"rerun names unknown steps {', '.join(unknown)}; steps are {', '.join(STEP_NAMES)}")
    return frozenset(names)


def run_pipeline(args: StepArgs, runner: StepRunner, today: date | None = None) -> dict[str, str]:
    """fetch_data -> build_features -> trainings and baselines (concurrently) -> compare
    -> tune(best model family) -> register (if it beats the baselines) -> predict (if a champion exists).

    Returns the run id of every step (a reused one for a cached step), by entry point.
    """
    raw = args.raw
    # Steps run with this interpreter: `python` in an entry point's command must
    # be the environment main itself runs in, whatever PATH said before.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

    inputs = caching.source_identity(raw["source"], parse_day(raw["end"], "end"), today or date.today())
    fetch = runner.run(
        Step(
            "fetch_data",
            {k: raw[k] for k in ("ticker", "start", "end", "source")} | {"min_rows": str(args.window + 1)},
            inputs=inputs,
        )
    )
    features = runner.run(
        Step(
            "build_features",
            {"prices": tracking.run_uri(fetch, tracking.PRICES_DIR), "window": raw["window"], "threshold": raw["threshold"]},
        )
    )
    training_data = tracking.run_uri(features, tracking.FEATURES_DIR)
    common = {"training_data": training_data, "split": raw["split"], "test_size": raw["test_size"], "seed": raw["seed"]}
    extra = {"keras": {"epochs": raw["keras_epochs"]}}
    # Costliest first: with fewer workers than steps, the long one must not wait.
    families = sorted(FAMILIES.values(), key=lambda f: -f.cost)
    scored = runner.run_many(
        [Step(f.entry_point, common | extra.get(f.name, {}), f.run_name) for f in families]
        + [Step("baselines", common)]
    )
    candidates = [scored[f.entry_point] for f in FAMILIES.values()]
    candidates += tracking.baseline_run_ids(scored["baselines"]).values()
    compare = runner.run(Step("compare", {"training_runs": ",".join(candidates), "metric": raw["metric"]}))
    winner = tracking.get_run(compare).data.tags[tracking.TAG_WINNER_FAMILY]
    log.info("compare: winning family %s", winner)
    tune = runner.run(
        Step("tune", common | {
            "family": winner, "max_evals": raw["max_evals"], "cv_folds": raw["cv_folds"],
            "early_stop": raw["early_stop"], "timeout": raw["tune_timeout"], "parallelism": raw["tune_parallelism"],
            "spark_master": raw["spark_master"],
        })
    )
    runner.run(
        Step("register", {"tuned_run": tune, "compare_run": compare, "ticker": raw["ticker"], "metric": raw["metric"],
                          "min_improvement": raw["min_improvement"]})
    )
    champion = tracking.champion_version(registry.model_name(raw["ticker"]))
    if champion is None:
        log.info("predict: skipped, %s has no champion yet", registry.model_name(raw["ticker"]))
    else:
        # The version, not the alias, enters the cache key: a new champion must predict anew.
        runner.run(
            Step("predict", {"ticker": raw["ticker"], "model_uri": champion,
                             "prices": tracking.run_uri(fetch, tracking.PRICES_DIR), "window": raw["window"],
                             "threshold": raw["threshold"]})
        )
    return {name: outcome.run_id for name, outcome in runner.outcomes.items()}
