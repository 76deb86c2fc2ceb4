"""k nearest neighbours: tomorrow goes the way it went after the most similar recent windows.

A psystock model family from its own package. psystock finds it through the
``psystock.families`` entry point in ``pyproject.toml`` and judges it exactly
like its built-in families: the same folds, interval, backtest, tuning and gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hyperopt import hp
from sklearn.neighbors import KNeighborsClassifier

from psystock.models.estimators import estimator_family


@dataclass(frozen=True, kw_only=True)
class KnnParams:
    """The neighbours' settings (scikit-learn's names), each a hyper-parameter of ``train -P family=knn``."""

    n_neighbors: int = 25  # windows that vote
    weights: str = "uniform"  # `uniform` or `distance`
    p: int = 1  # 1: Manhattan distance (days that differ), 2: Euclidean


def search_space() -> dict[str, Any]:
    return {
        "n_neighbors": hp.uniformint("n_neighbors", 5, 200),
        "weights": hp.choice("weights", ["uniform", "distance"]),
        "p": hp.choice("p", [1, 2]),
    }


FAMILY = estimator_family(
    "knn",
    KNeighborsClassifier,
    KnnParams,
    search_space,
    # Distances need features on one scale: real-valued feature sets are standardised in the model.
    scale=True,
    # What a fitted model holds beyond what skops trusts by itself, for MLflow to save and serve it.
    trusted_types=(
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
    ),
)
