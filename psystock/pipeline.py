"""The driver behind ``main``: runs every step with ``mlflow.run``, chained by run URIs.

Each step run is created here first, already a child of the main run, so the
UI shows one pipeline as one tree from the moment a step starts; the step
process then fills that run in (``mlflow.run(..., run_id=...)``).
"""

from __future__ import annotations

import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import mlflow
from mlflow.exceptions import ExecutionException

from psystock import PsystockError, tracking
from psystock.cli import PROJECT_ROOT, StepArgs
from psystock.models import FAMILIES

log = logging.getLogger("psystock.main")


@dataclass
class StepRunner:
    """Launches entry points of this project as child runs of ``parent_run_id``."""

    experiment_id: str
    parent_run_id: str
    env_manager: str = "local"
    project_dir: str = str(PROJECT_ROOT)
    launched: dict[str, str] = field(default_factory=dict)

    def run(self, entry_point: str, parameters: dict[str, str], run_name: str | None = None) -> str:
        """Run one step to its end; its run id, or an error naming the step."""
        return self.run_many([(entry_point, parameters, run_name)])[entry_point]

    def run_many(self, steps: list[tuple[str, dict[str, str], str | None]]) -> dict[str, str]:
        """Run independent steps at the same time; wait for all, then fail if any failed.

        Each step is a synchronous ``mlflow.run`` in its own thread: the step
        process starts at once, where an asynchronous ``mlflow.run`` would
        first start another ``mlflow run`` process to host it.
        """
        run_ids = {
            entry_point: tracking.create_step_run(
                self.experiment_id, self.parent_run_id, entry_point, run_name or entry_point, tags={}
            )
            for entry_point, _, run_name in steps
        }
        self.launched.update(run_ids)
        with ThreadPoolExecutor(max_workers=len(steps)) as pool:
            futures = {
                entry_point: pool.submit(self._run_one, entry_point, parameters, run_ids[entry_point])
                for entry_point, parameters, _ in steps
            }
            failed = [f"{ep} (run {run_ids[ep]})" for ep, future in futures.items() if not future.result()]
        if failed:
            raise PsystockError(f"step failed: {', '.join(failed)}; see its output above")
        return run_ids

    def _run_one(self, entry_point: str, parameters: dict[str, str], run_id: str) -> bool:
        log.info("%s: running (run %s)", entry_point, run_id)
        try:
            mlflow.projects.run(
                self.project_dir,
                entry_point=entry_point,
                parameters=parameters,
                experiment_id=self.experiment_id,
                run_id=run_id,
                env_manager=self.env_manager,
                synchronous=True,
            )
        except ExecutionException as exc:
            log.error("%s: FAILED (run %s): %s", entry_point, run_id, exc)
            tracking.fail_if_running(run_id)
            return False
        log.info("%s: finished (run %s)", entry_point, run_id)
        return True


def run_pipeline(args: StepArgs, runner: StepRunner) -> dict[str, str]:
    """fetch_data -> build_features -> trainings (concurrently) -> compare -> tune(winner).

    Returns the run id of every step, by entry point.
    """
    raw = args.raw
    # Steps run with this interpreter: `python` in an entry point's command must
    # be the environment main itself runs in, whatever PATH said before.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

    fetch = runner.run(
        "fetch_data",
        {k: raw[k] for k in ("ticker", "start", "end", "source")} | {"min_rows": str(args.window + 1)},
    )
    features = runner.run(
        "build_features",
        {"prices": tracking.run_uri(fetch, tracking.PRICES_DIR), "window": raw["window"], "threshold": raw["threshold"]},
    )
    training_data = tracking.run_uri(features, tracking.FEATURES_DIR)
    common = {"training_data": training_data, "split": raw["split"], "test_size": raw["test_size"], "seed": raw["seed"]}
    extra = {"keras": {"epochs": raw["keras_epochs"]}}
    trainings = runner.run_many(
        [(f.entry_point, common | extra.get(f.name, {}), f.run_name) for f in FAMILIES.values()]
    )
    compare = runner.run("compare", {"training_runs": ",".join(trainings.values()), "metric": raw["metric"]})
    winner = tracking.get_run(compare).data.tags[tracking.TAG_WINNER_FAMILY]
    log.info("compare: winning family %s", winner)
    runner.run(
        "tune",
        common | {"family": winner, "max_evals": raw["max_evals"], "cv_folds": raw["cv_folds"]},
    )
    return dict(runner.launched)
