"""monitor: how a ticker's champion does on the days after its refit range, against what happened.

Reads: the champion of ``psystock-<ticker>`` and ``prices`` (a run URI or
CSV; default: the bars of ``source`` from before the refit range's end up to
today). The champion is asked, from the bars before each day, what it would
have said on every day after its refit range (psystock.contract's history).
Writes: metrics ``live_<metric>`` with its interval, ``live_hit_rate``, the
backtest after costs and buy-and-hold's (``live_backtest_*``,
``live_buy_and_hold_*``), each baseline's ``live_<metric>_<baseline>``, and
the running figures ``live_running_*`` with the day's number as step and the
day as time; ``monitor/days.csv``, ``monitor/running.csv``, plots
``live_equity`` and ``live_<metric>``; tags ``psystock.health`` (ok,
degraded, too_few_days), ``psystock.health_reason`` (in numbers) and
``psystock.monitored_model``; prints ``<ticker> <version>: <health> (...)``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from psystock import PsystockError, monitoring, names
from psystock.entry_points import StepArgs
from psystock.mlflow_io.lifecycle import run_step
from psystock.mlflow_io.live import champion_days, log_watch
from psystock.scores import DEFAULT_METRIC, score
from psystock.tickers import check_ticker
from psystock.validation import check_backtest, check_bootstrap

log = logging.getLogger("psystock.monitor")


@dataclass(frozen=True, kw_only=True)
class Args(StepArgs):
    entry_point = "monitor"
    ticker: str = "BTC-USD"
    prices: str = ""
    source: str = names.STORE
    metric: str = DEFAULT_METRIC
    confidence: float = 0.95
    block_length: int = 0
    seed: int = 4284
    strategy: str = "long_flat"
    cost_bps: float = 10.0


def monitor(args: Args) -> None:
    check_ticker(args.ticker)
    score(args.metric)
    check_bootstrap(args.confidence, args.block_length)
    check_backtest(args.strategy, args.cost_bps)
    if args.prices and args.source != names.STORE:
        raise PsystockError("give prices or source, not both: prices are the bars to score the champion on")
    live = champion_days(args.ticker, args.prices, args.source, date.today())
    log.info("scoring %s on the %d day(s) after %s", live.uri, len(live.days), live.since)
    watch = monitoring.watch(
        args.metric,
        live.days,
        live.up_rate,
        live.holdout,
        args.confidence,
        args.block_length,
        args.seed,
        args.strategy,
        args.cost_bps,
        live.since,
    )
    log_watch(watch, live)
    print(f"{args.ticker} {live.uri}: {watch.health} ({watch.reason})", flush=True)


if __name__ == "__main__":
    run_step(Args, monitor)
