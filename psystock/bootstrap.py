"""Confidence intervals from a block bootstrap of days.

Neighbouring days are dependent (volatility clusters, and each window shares
all but one day with the next), so days are resampled in blocks: the
stationary bootstrap of Politis and Romano, from ``arch``, with random block
lengths of mean ``block_length``. ``block_length`` 0 chooses it from the data
with the Politis-White rule (``arch.bootstrap.optimal_block_length``).

Intervals are percentile intervals of the statistic over the resamples; two
predictors compared on the same days are resampled together (a paired
bootstrap), so their shared luck cancels.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from arch.bootstrap import StationaryBootstrap, optimal_block_length
from numpy.typing import ArrayLike

from psystock import PsystockError
from psystock.validation import check_bootstrap

DEFAULT_REPS = 2000


@dataclass(frozen=True)
class Interval:
    """A statistic's value on the days themselves and its bootstrap interval."""

    value: float
    low: float
    high: float
    confidence: float
    block_length: int

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def automatic_block_length(series: ArrayLike) -> int:
    """The Politis-White mean block length for the stationary bootstrap of ``series``, at least 1 day."""
    values = np.asarray(series, dtype=float).ravel()
    if len(values) < 10 or np.all(values == values[0]):
        return 1  # nothing to estimate a dependence from
    estimate = float(optimal_block_length(values)["stationary"].iloc[0])
    return max(1, math.ceil(estimate)) if math.isfinite(estimate) else 1


@functools.lru_cache(maxsize=4)
def resample_indices(n: int, reps: int, block_length: int, seed: int) -> np.ndarray:
    """``reps`` rows of ``n`` day indices, each a stationary-bootstrap resample of ``0..n-1``
    (read-only). Drawn once per process for each set of arguments: a step's intervals on the same
    holdout days often share their block length (the baselines step's six, the gate's three)."""
    if n < 1:
        raise PsystockError("no days to resample")
    bootstrap = StationaryBootstrap(block_length, np.arange(n), seed=np.random.default_rng(seed))
    indices = np.stack([bootstrap.update_indices() for _ in range(reps)])
    indices.flags.writeable = False
    return indices


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` interval of resampled values (resamples where it is undefined left out)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return float(low), float(high)


def interval(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    dependence: ArrayLike,
    confidence: float,
    block_length: int = 0,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> Interval:
    """The bootstrap interval of ``statistic`` over ``n`` days.

    ``statistic(indices)`` returns the statistic for each row of a 2-D array of
    day indices (one resample per row); ``dependence`` is the daily series whose
    autocorrelation sets the automatic block length.
    """
    check_bootstrap(confidence, block_length)
    length = block_length or automatic_block_length(dependence)
    value = float(statistic(np.arange(n)[None, :])[0])
    low, high = percentile_interval(statistic(resample_indices(n, reps, length, seed)), confidence)
    return Interval(value, low, high, confidence, length)


@dataclass(frozen=True)
class Comparison:
    """A paired bootstrap of ``a - b`` on the same days, and the one-sided evidence that it exceeds a margin."""

    difference: Interval
    p_value: float  # the share of resamples where a - b is at most the margin
    margin: float


def paired_difference(
    statistic_a: Callable[[np.ndarray], np.ndarray],
    statistic_b: Callable[[np.ndarray], np.ndarray],
    n: int,
    dependence: ArrayLike,
    confidence: float,
    block_length: int = 0,
    margin: float = 0.0,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> Comparison:
    """``a - b`` on the days and over the same resamples of them, with a one-sided p-value of ``a - b <= margin``."""
    check_bootstrap(confidence, block_length)
    length = block_length or automatic_block_length(dependence)
    everything = np.arange(n)[None, :]
    value = float(statistic_a(everything)[0] - statistic_b(everything)[0])
    indices = resample_indices(n, reps, length, seed)
    differences = statistic_a(indices) - statistic_b(indices)
    low, high = percentile_interval(differences, confidence)
    finite = differences[np.isfinite(differences)]
    p_value = (1 + int(np.sum(finite <= margin))) / (1 + len(finite))
    return Comparison(Interval(value, low, high, confidence, length), p_value, margin)
