"""register: put a tuned model into the Model Registry if it beats the best baseline.

Reads: ``tuned_run`` (a tune run: its model and its test-split ``metric``) and
``compare_run`` (the best baseline's score on the same split).
Writes: on success, a new version of ``psystock-<ticker>`` (tags: dataset
digest, pipeline run, tuned run, score) and the alias ``champion`` moved to
it; otherwise nothing in the registry. Either way, this run records the
decision (tag ``psystock.decision``: registered/refused), the reason
(``psystock.reason``) and both scores.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from psystock import PsystockError, registry
from psystock.entry_points import StepArgs
from psystock.mlflow_io import lineage, names
from psystock.mlflow_io.lifecycle import active_run, get_run, run_step

log = logging.getLogger("psystock.register")


@dataclass(frozen=True, kw_only=True)
class Args(StepArgs):
    entry_point = "register"
    tuned_run: str
    compare_run: str
    ticker: str = "BTC-USD"
    metric: str = names.PRIMARY_METRIC
    min_improvement: float = 0.0


def register(args: Args) -> None:
    tuned = get_run(names.run_id_of(args.tuned_run))
    compare = get_run(names.run_id_of(args.compare_run))
    if args.metric not in tuned.data.metrics:
        raise PsystockError(f"run {tuned.info.run_id} has no metric {args.metric!r}: pass the run of a tune step")
    baseline = compare.data.metrics.get(names.best_baseline_metric(args.metric))
    verdict = registry.decide(args.metric, tuned.data.metrics[args.metric], baseline, args.min_improvement)
    mlflow.log_metric(f"candidate_{args.metric}", verdict.candidate)
    if baseline is not None:
        mlflow.log_metric(f"baseline_{args.metric}", baseline)
    mlflow.set_tags({names.TAG_DECISION: verdict.decision, names.TAG_REASON: verdict.reason})
    if not verdict.register:
        log.warning("not registered: %s", verdict.reason)
        return

    tags = {
        names.VERSION_TAG_DATASET_DIGEST: lineage.dataset_digest(tuned) or "unknown",
        names.VERSION_TAG_PIPELINE_RUN: active_run().data.tags.get(MLFLOW_PARENT_RUN_ID, ""),
        names.VERSION_TAG_TUNED_RUN: tuned.info.run_id,
        args.metric: f"{verdict.candidate:.6f}",
        names.VERSION_TAG_BEST_BASELINE: compare.data.tags.get(names.TAG_BEST_BASELINE, ""),
    }
    version = registry.promote(args.ticker, tuned.info.run_id, tags)
    mlflow.log_metric("registered_version", version)
    uri = names.model_version_uri(names.model_name(args.ticker), version)
    mlflow.set_tag(names.TAG_REGISTERED_MODEL, uri)
    log.info("registered %s as %s: %s", uri, names.CHAMPION, verdict.reason)


if __name__ == "__main__":
    run_step(Args, register)
