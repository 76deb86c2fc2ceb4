"""Parameter checks shared by the library and the ``main`` driver.

Light on purpose (no scikit-learn, no MLflow): ``main`` checks its
parameters with these before it launches a single step.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from psystock import PsystockError, names
from psystock.scores import DEFAULT_METRIC


class Split(StrEnum):
    """How rows are divided into training and test: by time, or the reference's stratified shuffle."""

    CHRONOLOGICAL = "chronological"
    RANDOM = "random"


class Strategy(StrEnum):
    """What a backtest does on a "down" answer: nothing (``long_flat``) or sell short (``long_short``)."""

    LONG_FLAT = "long_flat"
    LONG_SHORT = "long_short"


@dataclass(frozen=True, kw_only=True)
class Protocol:
    """The protocol's parameters, declared once: every model and baseline step takes them (see
    MLproject), and :class:`psystock.protocol.Settings` checks them."""

    split: Split = Split.CHRONOLOGICAL
    test_size: float = 0.33
    seed: int = 4284
    cv_folds: int = 5
    metric: str = DEFAULT_METRIC
    confidence: float = 0.95
    block_length: int = 0
    strategy: Strategy = Strategy.LONG_FLAT
    cost_bps: float = 10.0


def check_split(split: str, test_size: float) -> None:
    if split not in tuple(Split):
        raise PsystockError(f"split must be one of {', '.join(Split)}, got {split!r}")
    if not 0 < test_size < 1:
        raise PsystockError(f"test_size must be between 0 and 1 (exclusive), got {test_size}")


def check_bootstrap(confidence: float, block_length: int) -> None:
    if not 0 < confidence < 1:
        raise PsystockError(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
    if block_length < 0:
        raise PsystockError(f"block_length must be 0 (automatic) or a number of days, got {block_length}")


def check_backtest(strategy: str, cost_bps: float) -> None:
    if strategy not in tuple(Strategy):
        raise PsystockError(f"strategy must be one of {', '.join(Strategy)}, got {strategy!r}")
    if cost_bps < 0:
        raise PsystockError(f"cost_bps must be >= 0, got {cost_bps}")


SEEDS = range(2**32)  # what numpy and scikit-learn take as a seed


def check_seed(seed: int) -> None:
    if seed not in SEEDS:
        raise PsystockError(f"seed must be a whole number from 0 to {SEEDS[-1]}, got {seed}")


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


def check_search(max_evals: int, early_stop: int, timeout: float, parallelism: int, spark_master: str) -> None:
    """The settings of a hyperopt search (see :class:`psystock.tuning.SearchSettings`)."""
    check_max_evals(max_evals)
    if early_stop < 0:
        raise PsystockError(f"early_stop must be 0 (off) or a number of trials, got {early_stop}")
    if timeout < 0:
        raise PsystockError(f"timeout must be 0 (none) or a number of seconds, got {timeout}")
    if parallelism < 0:
        raise PsystockError(f"parallelism must be 0 (Spark's default) or more, got {parallelism}")
    if parallelism > 1 and not spark_master:
        raise PsystockError(
            f"parallelism={parallelism} needs spark_master "
            f"(local[{parallelism}] on this machine, or spark://host:7077 for a cluster)"
        )


def ranked_by(split: str, metric: str) -> str:
    """The run metric every choice is made by: the CV mean on the development period under the
    chronological split, the holdout score under the reference's random one (which has no
    development period apart from its test rows)."""
    return names.cv_mean(metric) if split == Split.CHRONOLOGICAL else names.test_metric(metric)


def common_split(splits: set[str]) -> str:
    """The one split the candidates share; runs split differently cannot be ranked together."""
    if len(splits) > 1:
        raise PsystockError(
            f"the runs to compare were split differently ({', '.join(sorted(splits))}): compare runs of one split"
        )
    return next(iter(splits), Split.CHRONOLOGICAL.value)
