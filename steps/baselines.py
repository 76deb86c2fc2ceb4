"""baselines: naive predictors judged by exactly the protocol the models are.

Reads: ``training_data`` and the evaluation parameters (as the training steps).
Writes: one nested child run per baseline (``always_up``, ``persistence``,
``random_rate``), named ``baseline_<name>``, tagged ``model_family=baseline``,
with the models' cross-validation, holdout scores (no ROC AUC or log loss:
baselines give no probabilities), interval and backtest, ``metrics.json``,
``holdout/predictions.csv`` and the plots; on this run ``baselines.json``
(baseline -> run id).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow

from psystock import baselines, names, protocol
from psystock.entry_points import to_params
from psystock.mlflow_io.inputs import load_features
from psystock.mlflow_io.lifecycle import run_step
from psystock.mlflow_io.model_outputs import log_evaluation
from psystock.protocol import ScoringArgs

log = logging.getLogger("psystock.baselines")


@dataclass(frozen=True, kw_only=True)
class Args(ScoringArgs):
    entry_point = "baselines"


def score_baselines(args: Args) -> None:
    settings = args.settings()
    data = load_features(args.training_data)
    runs = {}
    for name in baselines.BASELINES:
        with mlflow.start_run(run_name=baselines.run_name(name), nested=True) as child:
            mlflow.set_tags(
                {names.TAG_FAMILY: baselines.FAMILY, names.TAG_BASELINE: name, names.TAG_ROLE: names.CANDIDATE}
            )
            mlflow.log_params(to_params(args))
            evaluation = protocol.evaluate(baselines.candidate(name, settings.seed), data, settings)
            log_evaluation(evaluation, data, f"baseline {name}")
            runs[name] = child.info.run_id
        log.info(
            "baseline %s: cv %s %.4f, holdout %s",
            name,
            settings.metric,
            evaluation.cv_mean(settings.metric),
            evaluation.interval,
        )
    mlflow.log_dict(runs, names.BASELINES_FILE)


if __name__ == "__main__":
    run_step(Args, score_baselines)
