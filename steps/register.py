"""register: the champion gate, the one step that judges by the holdout.

Reads: ``tuned_run`` (a tune run: its holdout answers and how it was tuned)
and ``compare_run`` (its leaderboard's baselines, whose holdout answers are
on their runs). Bootstraps, for each baseline, the difference of the holdout
``metric`` (model minus baseline) on the same resampled days
(``confidence``, ``block_length``, ``seed``); the model must beat every
baseline with confidence.
Writes: either way, the decision (tag ``psystock.decision``: registered or
refused) and its reason with the numbers (``psystock.reason``), the
baseline it turned on (``psystock.gate_baseline``: the one beaten by the
least), metrics ``candidate_<metric>``, ``baseline_<metric>``,
``improvement``, ``improvement_ci_low``, ``improvement_ci_high``,
``p_value``, ``block_length`` for that baseline, and
``<the same>_vs_<baseline>`` for each. When the interval's low end is above ``min_improvement``:
the tuned family refit with the tuned parameters on every row (development
period and holdout) as this run's ``model``, registered as a new version of
``psystock-<ticker>`` (tags: the holdout evidence, the refit range, dataset
digest, pipeline run, tuned run) with the alias ``champion``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from psystock import PsystockError, names, registry
from psystock.entry_points import StepArgs
from psystock.mlflow_io import champion, lineage
from psystock.mlflow_io.inputs import load_features, resolve_input
from psystock.mlflow_io.lifecycle import active_run, get_run, run_step
from psystock.scores import DEFAULT_METRIC, compute, score
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


def holdout_answers(run: Run, what: str) -> pd.DataFrame:
    """The holdout answers a model or baseline run logged (``holdout/predictions.csv``)."""
    path = resolve_input(names.run_uri(run.info.run_id, names.HOLDOUT_PREDICTIONS), "predictions.csv", what)
    return pd.read_csv(path)


def baseline_runs(compare: Run) -> dict[str, str]:
    """Every baseline on the compare run's leaderboard: run name -> run id."""
    path = resolve_input(
        names.run_uri(compare.info.run_id, names.LEADERBOARD_DIR), names.LEADERBOARD_FILE, "compare_run"
    )
    board = pd.read_csv(path)
    rows = board[board["family"] == names.BASELINE_FAMILY]
    return dict(zip(rows["run_name"], rows["run_id"], strict=True))


def register(args: Args) -> None:
    check_ticker(args.ticker)
    score(args.metric)
    check_bootstrap(args.confidence, args.block_length)
    tuned = get_run(names.run_id_of(args.tuned_run))
    compare = get_run(names.run_id_of(args.compare_run))
    if names.TAG_FAMILY not in tuned.data.tags or not any(
        k.startswith(names.BEST_PARAM_PREFIX) for k in tuned.data.params
    ):
        raise PsystockError(f"run {tuned.info.run_id} is not a tune run: pass the run of a tune step")
    model = holdout_answers(tuned, "tuned_run")
    truth, answers = model["truth"].to_numpy(), model["answer"].to_numpy()
    evidence, scored = {}, {}
    for name, run_id in baseline_runs(compare).items():
        baseline = holdout_answers(get_run(run_id), name)
        _check_same_days(model, baseline)
        evidence[name] = registry.evidence(
            args.metric,
            truth,
            answers,
            baseline["answer"].to_numpy(),
            args.confidence,
            args.block_length,
            args.seed,
            args.min_improvement,
        )
        scored[name] = _score(args.metric, baseline)
        d = evidence[name].difference
        mlflow.log_metrics(
            {
                names.against(name, args.metric): scored[name],
                names.against(name, names.IMPROVEMENT): d.value,
                names.against(name, names.IMPROVEMENT_CI_LOW): d.low,
                names.against(name, names.IMPROVEMENT_CI_HIGH): d.high,
                names.against(name, names.P_VALUE): evidence[name].p_value,
            }
        )
    verdict = registry.decide(args.metric, evidence, args.min_improvement)
    mlflow.log_metric(names.gate_candidate_metric(args.metric), _score(args.metric, model))
    if verdict.evidence is not None:
        d = verdict.evidence.difference
        mlflow.log_metrics(
            {
                names.gate_baseline_metric(args.metric): scored[verdict.baseline],
                names.IMPROVEMENT: d.value,
                names.IMPROVEMENT_CI_LOW: d.low,
                names.IMPROVEMENT_CI_HIGH: d.high,
                names.P_VALUE: verdict.evidence.p_value,
                names.BLOCK_LENGTH: d.block_length,
            }
        )
    holdout_range = _range(model)
    mlflow.set_tags(
        {
            names.TAG_DECISION: verdict.decision,
            names.TAG_REASON: verdict.reason,
            names.TAG_HOLDOUT_RANGE: holdout_range,
            names.TAG_GATE_BASELINE: verdict.baseline,
        }
    )
    if not verdict.register:
        log.warning("not registered: %s", verdict.reason)
        return
    _promote(args, tuned, compare, verdict, holdout_range)


def _score(metric: str, answers: pd.DataFrame) -> float:
    return compute(metric, answers["truth"], answers["answer"])


def _check_same_days(model: pd.DataFrame, baseline: pd.DataFrame) -> None:
    same = len(model) == len(baseline) and np.array_equal(model["truth"], baseline["truth"])
    if same and names.HOLDOUT_DATE in model and names.HOLDOUT_DATE in baseline:
        same = bool((model[names.HOLDOUT_DATE].astype(str) == baseline[names.HOLDOUT_DATE].astype(str)).all())
    if not same:
        raise PsystockError(
            "the tuned model and a baseline were scored on different holdout days: "
            "pass a compare run of the same pipeline"
        )


def _range(answers: pd.DataFrame) -> str:
    if names.HOLDOUT_DATE not in answers or answers.empty:
        return f"{len(answers)} rows"
    return f"{answers[names.HOLDOUT_DATE].iloc[0]}..{answers[names.HOLDOUT_DATE].iloc[-1]}"


def _promote(args: Args, tuned: Run, compare: Run, verdict: registry.Verdict, holdout_range: str) -> None:
    """Refit the tuned family on every row and register that model as the champion."""
    # Imported here: only a model that passed the gate needs its framework loaded.
    from psystock.mlflow_io.model_outputs import log_fitted_model
    from psystock.models import get_family
    from psystock.training import fit_on

    family = get_family(tuned.data.tags[names.TAG_FAMILY])
    prefix = names.BEST_PARAM_PREFIX
    params = family.params({k.removeprefix(prefix): v for k, v in tuned.data.params.items() if k.startswith(prefix)})
    data = load_features(tuned.data.params["training_data"])
    seed = int(tuned.data.params.get("seed", args.seed))
    log.info("refitting %s with the tuned parameters on all %d rows", family.name, len(data))
    model = fit_on(family, data, params, seed)
    log_fitted_model(family, model, data.X)
    first, last = (str(data.dates.iloc[i])[:10] for i in (0, -1)) if data.dates is not None else ("?", "?")
    tags = {
        names.VERSION_TAG_DATASET_DIGEST: lineage.dataset_digest(tuned) or "unknown",
        names.VERSION_TAG_PIPELINE_RUN: active_run().data.tags.get(MLFLOW_PARENT_RUN_ID, ""),
        names.VERSION_TAG_TUNED_RUN: tuned.info.run_id,
        names.VERSION_TAG_BEST_BASELINE: verdict.baseline,
        names.VERSION_TAG_METRIC: args.metric,
        names.VERSION_TAG_HOLDOUT: holdout_range,
        names.VERSION_TAG_EVIDENCE: verdict.reason,
        names.VERSION_TAG_REFIT_RANGE: f"{first}..{last}",
        names.VERSION_TAG_REFIT_ROWS: str(len(data)),
    }
    version = champion.promote(args.ticker, active_run().info.run_id, tags)
    mlflow.log_metric("registered_version", version)
    uri = names.model_version_uri(names.model_name(args.ticker), version)
    mlflow.set_tag(names.TAG_REGISTERED_MODEL, uri)
    log.info("registered %s as %s: %s", uri, names.CHAMPION, verdict.reason)


if __name__ == "__main__":
    run_step(Args, register)
