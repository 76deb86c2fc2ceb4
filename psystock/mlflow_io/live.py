"""What ``monitor`` reads and writes: a ticker's champion asked for the days after its refit range,
and the figures of :mod:`psystock.monitoring` logged, the running ones with the day as their step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import mlflow
import pandas as pd
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from psystock import PsystockError, names, price_store
from psystock.contract import BARS, HISTORY, Recipe
from psystock.features import day_returns, going_up
from psystock.mlflow_io.champion import refit_end, version_by_alias, version_uri
from psystock.mlflow_io.inputs import load_prices
from psystock.mlflow_io.lifecycle import active_run
from psystock.mlflow_io.outputs import log_csv
from psystock.mlflow_io.serving import loaded_model, recipe_of
from psystock.monitoring import Watch, running
from psystock.plots import equity_figure, line_figure

BATCH = 1000  # the most metrics one log_batch call takes


@dataclass(frozen=True)
class LiveDays:
    """A champion and the days after its refit range: each with its causal answer and what happened."""

    uri: str
    since: str  # the last day of its refit range
    recipe: Recipe
    holdout: tuple[float, float] | None  # the holdout interval it was registered on
    up_rate: float  # of the bars up to ``since``: the baselines' coin
    days: pd.DataFrame  # day, p_up, truth, yesterday_up, open_to_close, close_to_close


def champion_days(ticker: str, prices: str, source: str, today: date) -> LiveDays:
    """The champion of ``ticker`` asked, from the bars before each day, for every day after its
    refit range: from ``prices`` (a run URI or CSV) or the bars of ``source`` up to ``today``."""
    version = version_by_alias(ticker)
    if version is None:
        name = names.model_name(ticker)
        raise PsystockError(f"no champion model for {ticker} yet ({name}@{names.CHAMPION}): run main")
    uri, since = version_uri(version), refit_end(version)
    if not since:
        raise PsystockError(f"{uri} does not say which days it was refit on (tag refit_range): register it anew")
    with loaded_model(uri, ticker) as model:
        recipe = recipe_of(model)
        if recipe is None:
            raise PsystockError(f"{uri} predates the serving contract and takes feature rows: register it anew")
        if prices:
            bars = load_prices(prices).frame
        else:
            start = date.fromisoformat(since) - timedelta(days=3 * recipe.bars_needed + 14)
            bars = price_store.load_prices(source, ticker, start, today, recipe.bars_needed)[0].frame
        answers = pd.DataFrame(model.predict(bars.loc[:, list(BARS)], params={HISTORY: True}))
    answers = answers[answers["day"] > since].reset_index(drop=True)
    labels = going_up(bars, recipe.threshold)
    returns = day_returns(bars)
    days = pd.DatetimeIndex(pd.to_datetime(answers["day"]))
    frame = answers.loc[:, ["day", "p_up"]].assign(
        truth=labels.loc[days].to_numpy(),
        yesterday_up=labels.shift(1).loc[days].to_numpy(),
        open_to_close=returns.loc[days, "open_to_close"].to_numpy(),
        close_to_close=returns.loc[days, "close_to_close"].to_numpy(),
    )
    before = labels[labels.index <= pd.Timestamp(since)]
    low, _, high = version.tags.get(names.VERSION_TAG_HOLDOUT_CI, "").partition("..")
    holdout = (float(low), float(high)) if low and high else None
    up_rate = float(before.mean()) if len(before) else 0.5
    return LiveDays(uri, since, recipe, holdout, up_rate, frame)


def log_watch(watch: Watch, live: LiveDays) -> None:
    """The final figures and the health on the run; the running figures as metrics whose step is the
    day's number and whose time is the day's; the days and a plot of them as artifacts."""
    mlflow.log_metrics(watch.metrics())
    mlflow.set_tags(watch.tags() | {names.TAG_MONITORED_MODEL: live.uri})
    log_csv(watch.days, names.MONITOR_DAYS)
    if watch.days.empty:
        return
    figures = running(watch.metric, watch.days)
    log_csv(figures, names.MONITOR_RUNNING)
    stamps = pd.to_datetime(figures["day"]).dt.as_unit("ms").astype("int64").to_numpy()  # the day, in ms
    series = [c for c in figures.columns if c != "day"]
    metrics = [
        Metric(names.live(f"running_{column}"), float(value), int(stamp), step)
        for column in series
        for step, (value, stamp) in enumerate(zip(figures[column], stamps, strict=True))
        if value == value  # a metric undefined so far (one class seen) is left out
    ]
    client, run_id = MlflowClient(), active_run().info.run_id
    for start in range(0, len(metrics), BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + BATCH])
    days = pd.to_datetime(watch.days["day"])
    curves = {"champion": watch.days["strategy"], "buy and hold": watch.days["buy_and_hold"]}
    mlflow.log_figure(equity_figure(days, curves, f"{live.uri}: after {live.since}"), names.plot("live_equity"))
    mlflow.log_figure(
        line_figure(days, figures[watch.metric], f"{live.uri}: {watch.metric} so far", watch.metric),
        names.plot(f"live_{watch.metric}"),
    )
