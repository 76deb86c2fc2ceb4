"""A model family that exists only for the tests: a shallow decision tree, declared as any family is.

The tests enter it as a plugin (an entry point in a distribution they write) or
as a built-in (one more line of ``BUILT_IN``), and check that every step takes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hyperopt import hp
from sklearn.tree import DecisionTreeClassifier

from psystock.models.estimators import estimator_family

NAME = "throwaway"


@dataclass(frozen=True, kw_only=True)
class ThrowawayParams:
    """A shallow tree."""

    max_depth: int = 2  # tree depth
    min_samples_leaf: int = 20  # fewest days in a leaf


def search_space() -> dict[str, Any]:
    return {"max_depth": hp.uniformint("max_depth", 1, 4), "min_samples_leaf": hp.uniformint("min_samples_leaf", 5, 50)}


FAMILY = estimator_family(
    NAME, DecisionTreeClassifier, ThrowawayParams, search_space, trusted_types=("sklearn.tree._tree.Tree",)
)
