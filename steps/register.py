"""register: the champion gate, the one step that judges by the holdout.

The tuned model's holdout ``metric`` minus each baseline's, bootstrapped on
the same resampled blocks of days (:func:`psystock.registry.weigh`): it must
beat every baseline with confidence, and then the champion it would replace,
on the holdout days the champion never saw (:func:`psystock.registry.challenge`).
Either way the decision, its reason and the numbers go on this run; when it
passes, the family refit on every row is registered as a new version of
``psystock-<ticker>`` with the alias ``champion``, or ``challenger`` when the
champion stays (docs/entry-points.md#register).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow

from psystock import names, registry
from psystock.entry_points import StepArgs
from psystock.leaderboard import baseline_runs
from psystock.mlflow_io import champion
from psystock.mlflow_io.inputs import load_leaderboard
from psystock.mlflow_io.lifecycle import run_step
from psystock.scores import DEFAULT_METRIC, score
from psystock.tickers import check_ticker
from psystock.validation import check_bootstrap

log = logging.getLogger("psystock.register")


@dataclass(frozen=True, kw_only=True)
class Args(StepArgs):
    entry_point = "register"
    tuned_run: str
    compare_run: str
    ticker: str = "BTC-USD"
    metric: str = DEFAULT_METRIC
    min_improvement: float = 0.0
    confidence: float = 0.95
    block_length: int = 0
    seed: int = 4284


def register(args: Args) -> None:
    check_ticker(args.ticker)
    score(args.metric)
    check_bootstrap(args.confidence, args.block_length)
    tuned = champion.tune_run(args.tuned_run)
    baselines = baseline_runs(load_leaderboard(names.run_id_of(args.compare_run)))
    weighing = registry.weigh(
        args.metric,
        champion.holdout_answers(tuned.info.run_id, "tuned_run"),
        {name: champion.holdout_answers(run_id, name) for name, run_id in baselines.items()},
        args.confidence,
        args.block_length,
        args.seed,
        args.min_improvement,
    )
    mlflow.log_metrics(weighing.metrics())
    mlflow.set_tags(weighing.tags())
    if not weighing.verdict.register:
        log.warning("not registered: %s", weighing.verdict.reason)
        return
    challenge = champion.meet(
        args.ticker, tuned, args.metric, args.confidence, args.block_length, args.seed, args.min_improvement
    )
    version = champion.refit_and_promote(tuned, args.ticker, weighing, args.seed, challenge)
    uri = names.model_version_uri(names.model_name(args.ticker), version)
    mlflow.log_metric("registered_version", version)
    mlflow.set_tag(names.TAG_REGISTERED_MODEL, uri)
    log.info("registered %s as %s: %s", uri, challenge.alias if challenge else names.CHAMPION, weighing.verdict.reason)


if __name__ == "__main__":
    run_step(Args, register)
