"""baselines: naive predictors scored on exactly the split the models are scored on.

Reads: ``training_data``, ``split``, ``test_size``, ``seed`` (as the training steps).
Writes: one nested child run per baseline (``always_up``, ``persistence``,
``random_rate``), named ``baseline_<name>``, tagged ``model_family=baseline``,
with the models' test metrics (no ROC AUC or log loss: baselines give no
probabilities), ``metrics.json`` and a confusion matrix; on this run,
``baselines.json`` (baseline -> run id).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mlflow

from psystock import baselines
from psystock.entry_points import ScoringArgs
from psystock.evaluation import classification_scores, split_dataset
from psystock.mlflow_io import names
from psystock.mlflow_io.inputs import load_features
from psystock.mlflow_io.lifecycle import run_step
from psystock.mlflow_io.outputs import log_evaluation

log = logging.getLogger("psystock.baselines")


@dataclass(frozen=True, kw_only=True)
class Args(ScoringArgs):
    entry_point = "baselines"


def score_baselines(args: Args) -> None:
    data = load_features(args.training_data)
    parts = split_dataset(data, args.split, args.test_size, args.seed)
    runs = {}
    for name in baselines.BASELINES:
        with mlflow.start_run(run_name=baselines.run_name(name), nested=True) as child:
            mlflow.set_tags(
                {names.TAG_FAMILY: baselines.FAMILY, names.TAG_BASELINE: name, names.TAG_ROLE: names.CANDIDATE}
            )
            mlflow.log_params(
                {
                    "training_data": args.training_data,
                    "split": args.split,
                    "test_size": args.test_size,
                    "seed": args.seed,
                }
            )
            predicted = baselines.predict(name, parts.X_train, parts.y_train, parts.X_test, args.seed)
            scores = classification_scores(parts.y_test, predicted, probabilistic=False)
            log_evaluation(scores, parts.y_test, predicted, f"baseline {name}", probabilistic=False)
            runs[name] = child.info.run_id
        log.info("baseline %s: %s=%.4f", name, names.PRIMARY_METRIC, scores[names.PRIMARY_METRIC])
    mlflow.log_dict(runs, names.BASELINES_FILE)


if __name__ == "__main__":
    run_step(Args, score_baselines)
