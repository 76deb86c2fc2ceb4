"""register: put a tuned model into the Model Registry if it beats the best baseline.

Reads: ``tuned_run`` (a tune run: its model and its test-split ``metric``) and
``compare_run`` (the best baseline's score on the same split).
Writes: on success, a new version of ``psystock-<ticker>`` (tags: dataset
digest, pipeline run, tuned run, score) and the alias ``champion`` moved to
it; otherwise nothing in the registry. Either way, this run records the
decision (tag ``psystock.decision``: registered/refused), the reason
(``psystock.reason``) and both scores.
"""

import logging

import mlflow
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from psystock import PsystockError, registry, tracking
from psystock.stepkit import run_step

log = logging.getLogger("psystock.register")


def register(args) -> None:
    tuned = tracking.get_run(tracking.run_id_from_uri(args.tuned_run) or args.tuned_run)
    compare = tracking.get_run(tracking.run_id_from_uri(args.compare_run) or args.compare_run)
    if args.metric not in tuned.data.metrics:
        raise PsystockError(f"run {tuned.info.run_id} has no metric {args.metric!r}: pass the run of a tune step")
    baseline = compare.data.metrics.get(f"best_baseline_{args.metric}")
    decision = registry.decide(args.metric, tuned.data.metrics[args.metric], baseline, args.min_improvement)
    mlflow.log_metric(f"candidate_{args.metric}", decision.candidate)
    if baseline is not None:
        mlflow.log_metric(f"baseline_{args.metric}", baseline)
    mlflow.set_tags({"psystock.decision": "registered" if decision.register else "refused",
                     "psystock.reason": decision.reason})
    if not decision.register:
        log.warning("not registered: %s", decision.reason)
        return

    name = registry.model_name(args.ticker)
    pipeline = mlflow.active_run().data.tags.get(MLFLOW_PARENT_RUN_ID, "")
    tags = {
        "dataset_digest": tracking.dataset_digest(tuned) or "unknown",
        "pipeline_run_id": pipeline,
        "tuned_run_id": tuned.info.run_id,
        args.metric: f"{decision.candidate:.6f}",
        "best_baseline": compare.data.tags.get(tracking.TAG_BEST_BASELINE, ""),
    }
    version = mlflow.register_model(tracking.run_uri(tuned.info.run_id, tracking.MODEL), name, tags=tags)
    MlflowClient().set_registered_model_alias(name, registry.CHAMPION, version.version)
    mlflow.log_metric("registered_version", int(version.version))
    mlflow.set_tag("psystock.registered_model", f"models:/{name}/{version.version}")
    log.info("registered %s version %s as %s: %s", name, version.version, registry.CHAMPION, decision.reason)


if __name__ == "__main__":
    run_step("register", register)
