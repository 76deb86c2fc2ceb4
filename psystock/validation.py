"""Parameter checks shared by the library and the ``main`` driver.

Light on purpose (no scikit-learn, no MLflow): ``main`` checks its
parameters with these before it launches a single step.
"""

from __future__ import annotations

from psystock import PsystockError

SPLITS = ("chronological", "random")


def check_split(split: str, test_size: float) -> None:
    if split not in SPLITS:
        raise PsystockError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not 0 < test_size < 1:
        raise PsystockError(f"test_size must be between 0 and 1 (exclusive), got {test_size}")


def check_window(window: int) -> None:
    if window < 1:
        raise PsystockError(f"window must be at least 1, got {window}")


def check_max_evals(max_evals: int) -> None:
    if max_evals < 1:
        raise PsystockError(f"max_evals must be at least 1, got {max_evals}")


def check_min_improvement(min_improvement: float) -> None:
    if min_improvement < 0:
        raise PsystockError(f"min_improvement must be >= 0, got {min_improvement}")


def check_cv_folds(cv_folds: int) -> None:
    if cv_folds < 2:
        raise PsystockError(f"cv_folds must be at least 2, got {cv_folds}")
