"""A random forest (scikit-learn's ``RandomForestClassifier``): a family made of an estimator class,
its hyper-parameters and a search space, with nothing else of its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hyperopt import hp
from sklearn.ensemble import RandomForestClassifier

from psystock.models import BUILT_IN
from psystock.models.estimators import estimator_family


@dataclass(frozen=True, kw_only=True)
class ForestParams:
    """The forest's settings. Shallower trees and larger leaves than scikit-learn's defaults (fully
    grown trees): daily up/down moves are mostly noise, which full trees learn by heart."""

    n_estimators: int = 200  # trees
    max_depth: int = 6  # tree depth
    min_samples_leaf: int = 5  # fewest training days in a leaf
    max_features: str = "sqrt"  # columns tried per split: `sqrt`, `log2` or `None` (all)
    class_weight: str = "None"  # `None`, `balanced` or `balanced_subsample`


def search_space() -> dict[str, Any]:
    return {
        "n_estimators": hp.uniformint("n_estimators", 50, 400),
        "max_depth": hp.uniformint("max_depth", 2, 12),
        "min_samples_leaf": hp.qloguniform("min_samples_leaf", np.log(1), np.log(100), 1),
        "max_features": hp.choice("max_features", ["sqrt", "log2"]),
        "class_weight": hp.choice("class_weight", ["None", "balanced"]),
    }


FAMILY = estimator_family(
    BUILT_IN["forest"],
    RandomForestClassifier,
    ForestParams,
    search_space,
    # One core per fit: the pipeline trains several families at once on a small machine.
    fixed={"n_jobs": 1},
    # The trees' node storage, which skops (mlflow.sklearn's format) trusts only when told.
    trusted_types=("sklearn.tree._tree.Tree",),
)
