"""Trade what a model predicts and see what it would have earned: pure functions of days and answers.

The label says whether a day closes above its open, so that is the trade: on
a day the model says "up", buy at the Open and sell at the Close (and with
``long_short``, on a day it says "down", sell short at the Open and buy back
at the Close). Each traded day is a round trip and pays ``cost_bps`` basis
points per side, twice; a day out of the market pays nothing. Buy-and-hold,
Close to Close over the same days, is the yardstick.

Statistics are annualised with the series' own calendar: 365 periods a year
for prices that trade every day, 252 for weekday calendars. They follow the
usual definitions (those of ``empyrical``): the Sharpe ratio is the mean daily
return over its standard deviation (``ddof=1``, no risk-free rate) times the
square root of the periods a year; the annual growth rate compounds the total
return over the years the days span. Written with numpy: ``empyrical`` would
cost every step process over a second of imports (it loads ``yfinance``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from psystock import PsystockError
from psystock.data import weekdays_only
from psystock.validation import Strategy, check_backtest

DAILY = 365  # periods a year of a 7-day calendar (crypto)
TRADING_DAYS = 252  # periods a year of a weekday calendar (exchanges)


def periods_per_year(days: pd.Series | pd.DatetimeIndex) -> int:
    """365 for a calendar with weekends in it, 252 for one of weekdays only: read from the days themselves."""
    if not len(days):
        raise PsystockError("no days to infer a calendar from")
    return TRADING_DAYS if weekdays_only(days) else DAILY


def positions(predicted_up: ArrayLike, strategy: str) -> np.ndarray:
    """1 (long) on predicted up days; on the others 0 (``long_flat``) or -1 (``long_short``)."""
    up = np.asarray(predicted_up).astype(int).ravel() == 1
    return np.where(up, 1.0, -1.0 if strategy == Strategy.LONG_SHORT else 0.0)


def strategy_returns(position: ArrayLike, open_to_close: ArrayLike, cost_bps: float) -> np.ndarray:
    """Each day's return: the position times the day's Open-to-Close return, less a round trip's
    cost (two sides of ``cost_bps`` basis points) on every day in the market."""
    held = np.asarray(position, dtype=float)
    return np.asarray(held * np.asarray(open_to_close, dtype=float) - 2 * cost_bps / 10_000 * np.abs(held))


@dataclass(frozen=True)
class Performance:
    """What following a strategy over some days gave."""

    total_return: float
    cagr: float
    sharpe: float
    max_drawdown: float
    hit_rate: float  # of the days in the market, the share whose move the position was on the right side of
    exposure: float  # share of days in the market
    turnover: float  # capital traded per day: a round trip is 2 per unit held

    def as_metrics(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}_{name}": float(value) for name, value in self.__dict__.items()}


def performance(
    returns: ArrayLike, periods: int, position: ArrayLike | None = None, gross: ArrayLike | None = None
) -> Performance:
    """Summary statistics of daily ``returns``. ``position`` (and the positions' ``gross`` returns,
    before costs) give hit rate, exposure and turnover; without them the returns are a holding's."""
    r = np.asarray(returns, dtype=float)
    held = np.ones_like(r) if position is None else np.abs(np.asarray(position, dtype=float))
    before_costs = r if gross is None else np.asarray(gross, dtype=float)
    in_market = held > 0
    if not len(r):
        raise PsystockError("no days to backtest")
    total = float(np.prod(1 + r) - 1)
    return Performance(
        total_return=total,
        cagr=float((1 + total) ** (periods / len(r)) - 1),
        sharpe=_finite(float(sharpe_of_resamples(r, np.arange(len(r))[None, :], periods)[0])),
        max_drawdown=max_drawdown(r),
        hit_rate=float(np.mean(before_costs[in_market] > 0)) if in_market.any() else 0.0,
        exposure=float(np.mean(in_market)),
        turnover=0.0 if position is None else float(np.mean(2 * held)),  # a holding trades once, not daily
    )


def max_drawdown(returns: ArrayLike) -> float:
    """The deepest fall of the growth of 1 below its running peak, the starting 1 included: <= 0."""
    growth = np.cumprod(1 + np.asarray(returns, dtype=float))
    peaks = np.maximum.accumulate(np.concatenate(([1.0], growth)))[1:]
    return float(np.min(growth / peaks - 1))


def _finite(value: float) -> float:
    """A Sharpe ratio of returns that never vary is not a number; 0 says "no edge" in a table."""
    value = float(value)
    return value if np.isfinite(value) else 0.0


def sharpe_of_resamples(returns: ArrayLike, indices: np.ndarray, periods: int) -> np.ndarray:
    """The annualised Sharpe ratio of each resample (a row of ``indices``) of daily returns:
    NaN where the returns of a resample never vary."""
    resampled = np.asarray(returns, dtype=float)[indices]
    spread = resampled.std(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spread > 0, resampled.mean(axis=-1) / spread * np.sqrt(periods), np.nan)


@dataclass(frozen=True)
class Backtest:
    """A strategy's days and its performance, next to buy-and-hold over the same days."""

    days: pd.DataFrame  # date, prediction, position, open_to_close, close_to_close, gross, strategy, buy_and_hold
    strategy: Performance
    buy_and_hold: Performance
    periods_per_year: int


def run(
    dates: ArrayLike,
    predicted_up: ArrayLike,
    open_to_close: ArrayLike,
    close_to_close: ArrayLike,
    strategy: str = Strategy.LONG_FLAT,
    cost_bps: float = 10.0,
) -> Backtest:
    """Trade ``predicted_up`` on the given days (each with its Open-to-Close and Close-to-Close return)."""
    check_backtest(strategy, cost_bps)
    days = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)))
    position = positions(predicted_up, strategy)
    oc = np.asarray(open_to_close, dtype=float)
    gross = position * oc
    net = strategy_returns(position, oc, cost_bps)
    hold = np.asarray(close_to_close, dtype=float)
    periods = periods_per_year(days)
    frame = pd.DataFrame(
        {
            "date": days.strftime("%Y-%m-%d"),
            "prediction": np.asarray(predicted_up).astype(int).ravel(),
            "position": position,
            "open_to_close": oc,
            "close_to_close": hold,
            "gross": gross,
            "strategy": net,
            "buy_and_hold": hold,
        }
    )
    return Backtest(frame, performance(net, periods, position, gross), performance(hold, periods), periods)
