"""What every step does around its own work: arguments, logging, the run, errors.

A step file is ``run_step("<entry point>", body)``: the body receives the
parsed arguments inside an active MLflow run. A :class:`PsystockError` (bad
input) ends the step with one line on stderr, exit status 2 and the run
marked FAILED.

``run_step`` is a step process's last act: once the run is recorded it freezes
the garbage collector, so the interpreter's exit does not walk every object
MLflow, pandas and TensorFlow built (about 1 s per step process, most of a
cached ``main``'s tail). The OS frees the memory; exit handlers still run.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from typing import Callable

from psystock import PsystockError
from psystock.cli import StepArgs, parse_step_args

log = logging.getLogger("psystock")


def configure_logging() -> None:
    # Per-file download bars drown the step's own lines in logs.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(
        level=os.environ.get("PSYSTOCK_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # hyperopt reports its internals at INFO and py4j each connection it closes;
    # psystock reports each trial itself.
    for name in ("hyperopt", "hyperopt-spark", "py4j"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_step(
    entry_point: str,
    body: Callable[[StepArgs], None],
    run_name: str | None = None,
    argv: list[str] | None = None,
) -> None:
    """Run ``body`` for ``entry_point`` inside an MLflow run; exit non-zero on bad input."""
    configure_logging()
    args = parse_step_args(entry_point, argv)
    try:
        _run(entry_point, body, args, run_name)
    except PsystockError as exc:
        print(f"{entry_point}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:
        if not server_unreachable(exc):
            raise
        # The run stays RUNNING on the server, so no cache ever takes it for a finished step.
        import mlflow

        print(f"{entry_point}: error: cannot reach the tracking server at {mlflow.get_tracking_uri()}: "
              "is it running? (MLFLOW_TRACKING_URI names it)", file=sys.stderr)
        sys.exit(3)
    finally:
        gc.freeze()


def server_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a tracking server that refused, dropped or timed out every retry.

    MLflow wraps the ``requests`` error in an MlflowException; follow the chain.
    """
    import requests

    lost = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError)
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, lost):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _run(entry_point: str, body, args: StepArgs, run_name: str | None) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    from psystock import tracking

    try:
        active = mlflow.start_run(run_name=run_name or entry_point)
    except MlflowException as exc:
        if server_unreachable(exc):
            raise
        raise PsystockError(f"cannot start a run on {mlflow.get_tracking_uri()}: {exc.message}") from None
    with active as run:
        log.info("%s: run %s (experiment %s)", entry_point, run.info.run_id, run.info.experiment_id)
        mlflow.set_tag(tracking.TAG_STEP, entry_point)
        tracking.log_params_once(args.raw)
        body(args)
        log.info("%s: done", entry_point)
