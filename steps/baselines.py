"""baselines: naive predictors scored on exactly the split the models are scored on.

Reads: ``training_data``, ``split``, ``test_size``, ``seed`` (as the training steps).
Writes: one nested child run per baseline (``always_up``, ``persistence``,
``random_rate``), named ``baseline_<name>``, tagged ``model_family=baseline``,
with the models' test metrics (no ROC AUC or log loss: baselines give no
probabilities), ``metrics.json`` and a confusion matrix; on this run,
``baselines.json`` (baseline -> run id).
"""

import logging

import mlflow

from psystock import baselines, tracking
from psystock.evaluation import classification_scores, split_dataset
from psystock.stepkit import run_step
from psystock.train_step import log_evaluation

log = logging.getLogger("psystock.baselines")


def score_baselines(args) -> None:
    data = tracking.load_features(args.training_data)
    parts = split_dataset(data, args.split, args.test_size, args.seed)
    runs = {}
    for name in baselines.BASELINES:
        with mlflow.start_run(run_name=f"baseline_{name}", nested=True) as child:
            mlflow.set_tags({tracking.TAG_FAMILY: tracking.BASELINE_FAMILY, tracking.TAG_BASELINE: name,
                             tracking.TAG_ROLE: tracking.CANDIDATE})
            mlflow.log_params({k: args.raw[k] for k in ("training_data", "split", "test_size", "seed")})
            predicted = baselines.predict(name, parts.X_train, parts.y_train, parts.X_test, args.seed)
            scores = classification_scores(parts.y_test, predicted, probabilistic=False)
            log_evaluation(scores, parts.y_test, predicted, f"baseline {name}", probabilistic=False)
            runs[name] = child.info.run_id
        log.info("baseline %s: f1_experiment_score=%.4f", name, scores["f1_experiment_score"])
    mlflow.log_dict(runs, tracking.BASELINES_FILE)


if __name__ == "__main__":
    run_step("baselines", score_baselines)
