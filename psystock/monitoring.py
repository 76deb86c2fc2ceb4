"""Live scoring of a champion: its predictions on the days after its refit range, against what happened.

Pure: the days in (each with the champion's causal ``p_up``, the truth and the
day's returns), the figures and the champion's health out. The health is
``too_few_days`` below :data:`MIN_LIVE_DAYS`; ``degraded`` when the live
score's interval lies wholly below the holdout interval the champion was
registered on, or when a naive baseline is surely better over the same days
(the paired bootstrap's upper end below zero); ``ok`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from psystock import backtest, baselines, bootstrap, names, registry, scores
from psystock.bootstrap import Comparison, Interval
from psystock.features import YESTERDAY_UP

MIN_LIVE_DAYS = 30  # the fewest scored days that can say how a champion does


@dataclass(frozen=True)
class Watch:
    """What the days since the refit range say of a champion."""

    metric: str
    days: pd.DataFrame  # day, p_up, prediction, truth, hit, strategy, buy_and_hold: a row per day scored
    score: Interval | None
    hit_rate: float
    trades: backtest.Backtest | None
    baseline_scores: dict[str, float]
    against: tuple[str, Comparison] | None  # the best baseline over the same days, and the champion minus it
    health: names.Health
    reason: str

    def metrics(self) -> dict[str, float]:
        """The final figures: ``live_<what>``."""
        found = {names.live("days"): float(len(self.days)), names.live("hit_rate"): self.hit_rate}
        if self.score is not None:
            found |= {
                names.live(self.metric): self.score.value,
                names.live(f"{self.metric}_ci_low"): self.score.low,
                names.live(f"{self.metric}_ci_high"): self.score.high,
            }
        if self.trades is not None:
            found |= self.trades.strategy.as_metrics(names.live(names.BACKTEST))
            found |= self.trades.buy_and_hold.as_metrics(names.live(names.BUY_AND_HOLD))
        for name, value in self.baseline_scores.items():
            found[names.live(f"{self.metric}_{name}")] = value
        if self.against is not None:
            d = self.against[1].difference
            found |= {names.live("improvement"): d.value, names.live("improvement_ci_low"): d.low}
            found[names.live("improvement_ci_high")] = d.high
        return {k: v for k, v in found.items() if np.isfinite(v)}

    def tags(self) -> dict[str, str]:
        return {names.TAG_HEALTH: self.health, names.TAG_HEALTH_REASON: self.reason}


def running(metric: str, days: pd.DataFrame) -> pd.DataFrame:
    """The figures as they stood after each day: the metric and hit rate so far, and the growth of
    1 following the champion (after costs) and holding."""
    truth, p_up = days["truth"].to_numpy(), days["p_up"].to_numpy()
    so_far = [scores.compute(metric, truth[: k + 1], p_up[: k + 1]) for k in range(len(days))]
    return pd.DataFrame(
        {
            "day": days["day"],
            metric: so_far,
            "hit_rate": np.cumsum(days["hit"].to_numpy()) / np.arange(1, len(days) + 1),
            "equity": np.cumprod(1 + days["strategy"].to_numpy()),
            "buy_and_hold_equity": np.cumprod(1 + days["buy_and_hold"].to_numpy()),
        }
    )


def watch(
    metric: str,
    days: pd.DataFrame,
    up_rate: float,
    holdout: tuple[float, float] | None,
    confidence: float,
    block_length: int,
    seed: int,
    strategy: str,
    cost_bps: float,
    since: str,
    min_days: int = MIN_LIVE_DAYS,
) -> Watch:
    """Score the champion's answers on ``days`` (``day``, ``p_up``, ``truth``, ``yesterday_up``,
    ``open_to_close``, ``close_to_close``), the days after its refit range ended on ``since``,
    against what happened, the holdout interval it was registered on and each baseline (with the
    refit period's ``up_rate``)."""
    truth, p_up = days["truth"].to_numpy(), days["p_up"].to_numpy()
    predicted = scores.predictions(p_up)
    n = len(days)
    trades = None
    if n:
        trades = backtest.run(days["day"], predicted, days["open_to_close"], days["close_to_close"], strategy, cost_bps)
    scored = days.assign(
        prediction=predicted,
        hit=(predicted == truth).astype(int),
        strategy=trades.days["strategy"].to_numpy() if trades else [],
        buy_and_hold=trades.days["buy_and_hold"].to_numpy() if trades else [],
    )
    hit_rate = float(scored["hit"].mean()) if n else float("nan")
    where = f"{n} day(s) since the refit range ended ({since})"
    if n < min_days:
        reason = f"{where}: at least {min_days} are needed to judge the champion"
        return Watch(metric, scored, None, hit_rate, trades, {}, None, names.Health.TOO_FEW_DAYS, reason)

    hits = scored["hit"].to_numpy(dtype=float)
    score = bootstrap.interval(
        lambda indices: scores.resampled(metric, truth, p_up, indices), n, hits, confidence, block_length, seed=seed
    )
    X = pd.DataFrame({YESTERDAY_UP: days["yesterday_up"].to_numpy(dtype=int)})
    naive = {
        baselines.run_name(name): baselines.candidate(name, seed).answer(up_rate, X) for name in baselines.BASELINES
    }
    baseline_scores = {name: scores.compute(metric, truth, answers) for name, answers in naive.items()}
    best = max(baseline_scores, key=lambda name: baseline_scores[name])
    against = registry.evidence(metric, truth, p_up, naive[best], confidence, block_length, seed)
    d = against.difference
    live = f"{metric} over the {where}: {score}"
    versus = f"against {best}, the best baseline over those days: {d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"
    if holdout is not None and score.high < holdout[0]:
        health, verdict = names.Health.DEGRADED, f"wholly below the holdout's [{holdout[0]:.3f}, {holdout[1]:.3f}]"
    elif d.high < 0:
        health, verdict = names.Health.DEGRADED, f"{versus}: the baseline is surely better"
    else:
        shown = f"[{holdout[0]:.3f}, {holdout[1]:.3f}]" if holdout is not None else "unknown"
        health, verdict = names.Health.OK, f"not below the holdout's {shown}; {versus}"
    reason = f"{live}, {verdict}"
    return Watch(metric, scored, score, hit_rate, trades, baseline_scores, (best, against), health, reason)
