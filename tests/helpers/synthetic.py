"""Synthetic daily bars in Yahoo's layout, with a signal planted in them or none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def bars_from_labels(up: np.ndarray, seed: int, start: str = "2018-01-01") -> pd.DataFrame:
    """Daily bars (every calendar day) that close above their open exactly on the days ``up`` says."""
    rng = np.random.default_rng(seed)
    n = len(up)
    moves = np.where(up == 1, 1, -1) * rng.uniform(0.002, 0.03, n)  # well clear of the 0.00001 threshold
    gaps = rng.normal(0, 0.005, n)  # the overnight move, open against the previous close
    close = np.empty(n)
    open_ = np.empty(n)
    previous = 100.0
    for t in range(n):
        open_[t] = previous * (1 + gaps[t])
        close[t] = open_[t] * (1 + moves[t])
        previous = close[t]
    return pd.DataFrame(
        {
            "Date": pd.date_range(start, periods=n, freq="D").strftime("%Y-%m-%d"),
            "Open": open_,
            "High": np.maximum(open_, close) * 1.005,
            "Low": np.minimum(open_, close) * 0.995,
            "Close": close,
            "Adj Close": close,
            "Volume": rng.integers(1_000, 9_000, n),
        }
    )


def planted_labels(n: int, follow: float, seed: int) -> np.ndarray:
    """Up/down days where each day repeats the day two back with probability ``follow``
    (0.5: a fair coin, nothing to learn)."""
    rng = np.random.default_rng(seed)
    up = rng.integers(0, 2, n)
    for t in range(2, n):
        up[t] = up[t - 2] if rng.random() < follow else 1 - up[t - 2]
    return up


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path
