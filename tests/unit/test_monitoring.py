"""Live scoring's pure half: the champion's days against what happened, and the health they say."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from psystock import names, scores
from psystock.monitoring import running, watch


def days(n: int, right: float, seed: int = 0) -> pd.DataFrame:
    """``n`` days after 2021-01-01 on which the champion is right with probability ``right``."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    correct = rng.random(n) < right
    p_up = np.where(correct == (truth == 1), 0.7, 0.3)
    move = np.where(truth == 1, 1, -1) * rng.uniform(0.001, 0.02, n)
    return pd.DataFrame(
        {
            "day": pd.date_range("2021-01-02", periods=n, freq="D").strftime("%Y-%m-%d"),
            "p_up": p_up,
            "truth": truth,
            "yesterday_up": np.concatenate(([0], truth))[:n],
            "open_to_close": move,
            "close_to_close": move + rng.normal(0, 0.002, n),
        }
    )


def judged(frame: pd.DataFrame, holdout=(0.5, 0.8), **overrides):
    settings = {"up_rate": 0.5, "holdout": holdout, "confidence": 0.95, "block_length": 0, "seed": 3}
    settings |= {"strategy": "long_flat", "cost_bps": 10.0, "since": "2021-01-01"} | overrides
    return watch("mcc", frame, **settings)


def test_a_champion_as_good_as_its_holdout_is_ok():
    found = judged(days(300, 0.85))
    assert found.health is names.Health.OK
    assert found.score is not None and found.score.low > 0.5
    assert found.hit_rate == pytest.approx(found.days["hit"].mean())
    assert found.reason.startswith("mcc over the 300 day(s) since the refit range ended (2021-01-01): ")
    assert "not below the holdout's [0.500, 0.800]; against baseline_" in found.reason
    assert found.tags() == {"psystock.health": "ok", "psystock.health_reason": found.reason}


def test_a_champion_whose_signal_stopped_is_degraded_against_its_holdout_interval():
    found = judged(days(300, 0.5))
    assert found.health is names.Health.DEGRADED
    assert found.score is not None and found.score.high < 0.5
    assert found.reason.endswith("wholly below the holdout's [0.500, 0.800]")


def test_a_champion_a_naive_baseline_surely_beats_is_degraded_even_without_a_holdout_interval():
    found = judged(days(300, 0.1), holdout=None)
    assert found.health is names.Health.DEGRADED
    assert found.against is not None and found.against[1].difference.high < 0
    assert found.reason.endswith("the baseline is surely better")


def test_too_few_days_say_so_and_still_count_what_there_is():
    found = judged(days(12, 0.85))
    assert found.health is names.Health.TOO_FEW_DAYS
    assert (
        found.reason
        == "12 day(s) since the refit range ended (2021-01-01): at least 30 are needed to judge the champion"
    )
    assert found.metrics()["live_days"] == 12 and "live_mcc" not in found.metrics()
    assert judged(days(0, 0.85)).health is names.Health.TOO_FEW_DAYS


def test_the_figures_cover_the_score_its_interval_the_backtest_and_every_baseline():
    frame = days(200, 0.8)
    found = judged(frame)
    metrics = found.metrics()
    assert metrics["live_mcc"] == pytest.approx(scores.compute("mcc", frame["truth"], frame["p_up"]))
    assert metrics["live_mcc_ci_low"] < metrics["live_mcc"] < metrics["live_mcc_ci_high"]
    assert {"live_backtest_sharpe", "live_buy_and_hold_sharpe", "live_backtest_total_return"} <= set(metrics)
    assert {"live_mcc_baseline_always_up", "live_mcc_baseline_persistence", "live_mcc_baseline_random_rate"} <= set(
        metrics
    )
    # long_flat after costs: in the market on the days predicted up, paying 10 bps a round trip each side.
    up = frame["p_up"].to_numpy() > 0.5
    expected = np.where(up, frame["open_to_close"] - 2 * 10 / 10_000, 0.0)
    np.testing.assert_allclose(found.days["strategy"], expected)


def test_the_running_figures_end_where_the_final_ones_are():
    frame = days(120, 0.8)
    found = judged(frame)
    figures = running("mcc", found.days)
    assert len(figures) == 120 and list(figures["day"]) == list(frame["day"])
    assert figures["mcc"].iloc[-1] == pytest.approx(found.metrics()["live_mcc"])
    assert figures["hit_rate"].iloc[-1] == pytest.approx(found.hit_rate)
    assert figures["equity"].iloc[-1] - 1 == pytest.approx(found.metrics()["live_backtest_total_return"])
    assert figures["hit_rate"].iloc[0] == found.days["hit"].iloc[0]
