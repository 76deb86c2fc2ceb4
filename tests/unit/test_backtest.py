"""Backtests, checked against arithmetic done by hand on five days."""

import numpy as np
import pandas as pd
import pytest

from psystock import PsystockError, backtest

DAYS = pd.date_range("2024-01-01", periods=5, freq="D")  # Monday to Friday
PREDICTED_UP = [1, 0, 1, 1, 0]
OPEN_TO_CLOSE = [0.02, -0.01, -0.005, 0.03, 0.01]
CLOSE_TO_CLOSE = [0.01, -0.02, 0.0, 0.025, 0.015]


def test_long_flat_trades_the_up_days_and_pays_a_round_trip_on_each():
    result = backtest.run(DAYS, PREDICTED_UP, OPEN_TO_CLOSE, CLOSE_TO_CLOSE, "long_flat", cost_bps=10)
    # 10 bps a side, in at the Open and out at the Close: 0.002 a traded day, nothing on a flat one.
    expected = [0.02 - 0.002, 0.0, -0.005 - 0.002, 0.03 - 0.002, 0.0]
    np.testing.assert_allclose(result.days["strategy"], expected)
    s = result.strategy
    assert s.total_return == pytest.approx(1.018 * 0.993 * 1.028 - 1)
    assert s.max_drawdown == pytest.approx(0.993 - 1)  # from 1.018 down to 1.018 * 0.993
    assert s.exposure == pytest.approx(3 / 5)
    assert s.turnover == pytest.approx(2 * 3 / 5)  # in and out on each of three days in five
    assert s.hit_rate == pytest.approx(2 / 3)  # two of the three traded days moved the way of the position
    assert result.periods_per_year == 252  # weekdays only
    assert s.cagr == pytest.approx((1.018 * 0.993 * 1.028) ** (252 / 5) - 1)
    assert s.sharpe == pytest.approx(np.mean(expected) / np.std(expected, ddof=1) * np.sqrt(252))


def test_long_short_sells_the_down_days():
    result = backtest.run(DAYS, PREDICTED_UP, OPEN_TO_CLOSE, CLOSE_TO_CLOSE, "long_short", cost_bps=10)
    expected = [0.018, 0.01 - 0.002, -0.007, 0.028, -0.01 - 0.002]
    np.testing.assert_allclose(result.days["strategy"], expected)
    assert result.strategy.total_return == pytest.approx(np.prod(1 + np.array(expected)) - 1)
    assert (result.strategy.exposure, result.strategy.turnover) == (1.0, 2.0)
    assert result.strategy.hit_rate == pytest.approx(3 / 5)


def test_buy_and_hold_holds_close_to_close_over_the_same_days():
    result = backtest.run(DAYS, PREDICTED_UP, OPEN_TO_CLOSE, CLOSE_TO_CLOSE)
    assert result.buy_and_hold.total_return == pytest.approx(np.prod(1 + np.array(CLOSE_TO_CLOSE)) - 1)
    assert (result.buy_and_hold.exposure, result.buy_and_hold.turnover) == (1.0, 0.0)


def test_costs_are_zero_when_zero_and_never_paid_out_of_the_market():
    free = backtest.run(DAYS, [0, 0, 0, 0, 0], OPEN_TO_CLOSE, CLOSE_TO_CLOSE, "long_flat", cost_bps=25)
    assert free.strategy.total_return == 0.0 and free.strategy.turnover == 0.0
    gross = backtest.run(DAYS, PREDICTED_UP, OPEN_TO_CLOSE, CLOSE_TO_CLOSE, "long_flat", cost_bps=0)
    np.testing.assert_allclose(gross.days["strategy"], gross.days["gross"])


def test_the_calendar_sets_the_annualisation():
    assert backtest.periods_per_year(pd.date_range("2024-01-01", periods=30, freq="D")) == 365
    assert backtest.periods_per_year(pd.bdate_range("2024-01-01", periods=30)) == 252


def test_sharpe_of_resamples_matches_each_resample():
    rng = np.random.default_rng(0)
    r = rng.normal(0.001, 0.01, 100)
    indices = rng.integers(0, 100, (5, 100))
    expected = [np.mean(r[i]) / np.std(r[i], ddof=1) * np.sqrt(365) for i in indices]
    np.testing.assert_allclose(backtest.sharpe_of_resamples(r, indices, 365), expected)


@pytest.mark.parametrize(
    ("strategy", "cost", "message"),
    [
        ("short_only", 10, "strategy must be one of long_flat, long_short"),
        ("long_flat", -1, "cost_bps must be >= 0"),
    ],
)
def test_bad_settings_are_refused(strategy, cost, message):
    with pytest.raises(PsystockError, match=message):
        backtest.run(DAYS, PREDICTED_UP, OPEN_TO_CLOSE, CLOSE_TO_CLOSE, strategy, cost)
