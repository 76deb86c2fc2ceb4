"""The serving contract: what every version psystock registers takes and answers, whatever its family.

**In:** the daily bars ``Date, Open, High, Low, Close, Volume``, oldest first,
at least as many days as the feature set needs (:attr:`Recipe.bars_needed`).
The model builds its features from them with the code ``build_features`` uses.
**Out:** one row: the day predicted (the next day of the bars' own calendar),
``p_up`` and ``direction``. Asked for the ``history``, a row for every day of
the bars that the days before it can predict: what the model would have said
each day, causally (how a champion is scored on days it never saw).

A :class:`Recipe` is what a model needs to know to do that: its family and the
feature set, window and threshold it was trained on. It travels as the
model's configuration and metadata (:meth:`Recipe.config`), so a client can
read how many bars to send without loading the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from psystock import PsystockError, data, features

CONTRACT = "psystock.next_day/1"
BARS = ("Date", "Open", "High", "Low", "Close", "Volume")
ANSWER = ("day", "p_up", "direction")
HISTORY = "history"  # the model's parameter that asks for every day's answer, not the next day's


def direction(p_up: float) -> str:
    return "up" if p_up > 0.5 else "down"


@dataclass(frozen=True)
class Recipe:
    """How a served model turns bars into its input: its family and its training features."""

    family: str
    feature_set: str
    window: int
    threshold: float

    @property
    def bars_needed(self) -> int:
        return features.bars_needed(self.feature_set, self.window)

    @property
    def packages(self) -> tuple[str, ...]:
        """What building the features needs installed, beyond psystock's own dependencies."""
        return features.check_feature_set(self.feature_set).packages

    def describe(self) -> str:
        return f"the {self.feature_set} features over {self.window} days"

    def config(self) -> dict[str, Any]:
        """The model's configuration and metadata: the contract it keeps and this recipe."""
        return {
            "contract": CONTRACT,
            "family": self.family,
            "features": self.feature_set,
            "window": self.window,
            "threshold": self.threshold,
            "bars_needed": self.bars_needed,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Recipe | None:
        """The recipe of a model that keeps this contract, or None (a version that takes feature rows)."""
        if not config or config.get("contract") != CONTRACT:
            return None
        return cls(str(config["family"]), str(config["features"]), int(config["window"]), float(config["threshold"]))

    def model_input(self, bars: pd.DataFrame) -> tuple[pd.DataFrame, date]:
        """The feature row the bars give for the day after their last, and that day."""
        frame = checked_bars(bars, self.bars_needed, self.describe())
        day = data.next_trading_day(frame["Date"])
        row = features.latest_features(frame, self.feature_set, self.window, pd.Timestamp(day), self.threshold)
        return row, day

    def history_input(self, bars: pd.DataFrame) -> pd.DataFrame:
        """For every day of the bars whose features the bars before it define, that row, as the
        training table holds it (indexed by the day predicted)."""
        frame = checked_bars(bars, self.bars_needed + 1, self.describe() + " and the day predicted")
        table = features.make_table(frame, self.feature_set, self.window, self.threshold).frame
        return features.feature_set(table).X


def checked_bars(bars: pd.DataFrame, needed: int, what: str) -> pd.DataFrame:
    """Validated bars in Yahoo's layout (``Close`` stands in for a missing ``Adj Close``), at least
    ``needed`` of them; anything else is one clear error that says what to send."""
    missing = [c for c in BARS if c not in bars.columns]
    if missing:
        raise PsystockError(
            f"the bars lack {', '.join(missing)}: send columns {', '.join(BARS)}, a row per day, oldest first"
        )
    if len(bars) < needed:
        raise PsystockError(
            f"{len(bars)} bar(s) given; {what} need the last {needed} days: send at least {needed} rows, oldest first"
        )
    frame = bars.loc[:, list(BARS)]
    frame = frame.assign(**{"Adj Close": frame["Close"]})
    return data.validate_prices(frame).frame


def answer(day: date, p_up: float) -> pd.DataFrame:
    """The contract's output: the day predicted (ISO), P(up) and the direction it names."""
    return answers(pd.DatetimeIndex([day]), np.asarray([p_up]))


def answers(days: pd.DatetimeIndex, p_up: np.ndarray) -> pd.DataFrame:
    """A row per day predicted: the day (ISO), P(up) (clipped into [0, 1]) and the direction."""
    p = np.clip(np.asarray(p_up, dtype=float), 0.0, 1.0)
    return pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "p_up": p, "direction": np.where(p > 0.5, "up", "down")})
