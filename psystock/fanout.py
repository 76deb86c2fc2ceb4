"""The driver behind ``universe``: one ``main`` per ticker, side by side, then the cross-ticker report.

Each ticker's pipeline is a child run of the universe run, tagged with its
ticker, and goes through the same step cache as a step of ``main`` does
(:class:`psystock.pipeline.StepRunner`): a pipeline whose parameters, code
and data are unchanged is reused whole, a failed one runs again, a new
ticker runs alone. On this machine the pipelines are ``mlflow.projects.run``
calls from this process, ``max_pipelines`` at a time, so none pays the
``mlflow`` command's start-up; each ``main`` is forked from this process's
plain server and forks its steps from this process's servers
(:func:`psystock.forking.lent_servers`), so none pays for an interpreter or
servers of its own either (``launcher=subprocess``: a new interpreter per
pipeline, with servers of its own); with ``spark_master`` each is one Spark task
(:func:`psystock.spark.run_launches`), from the same Git URL and commit
when the universe itself runs from Git.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path

import mlflow
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_SOURCE_NAME

from psystock import PsystockError, caching, names, plots, universe
from psystock.data import parse_day
from psystock.entry_points import PROJECT_ROOT, StepArgs, format_value
from psystock.mlflow_io import champion
from psystock.mlflow_io.inputs import artifact_bytes
from psystock.mlflow_io.lifecycle import active_run, get_run
from psystock.mlflow_io.outputs import log_csv
from psystock.models import choose_families
from psystock.names import REMOTE_SOURCES
from psystock.pipeline import (
    PipelineSettings,
    Step,
    StepRunner,
    StepStatus,
    check_settings,
    entry_points_of,
    family_code,
    parse_rerun,
)
from psystock.scores import score
from psystock.tickers import parse_tickers
from psystock.universe import PipelineSummary, TickerResult

log = logging.getLogger("psystock.universe")


def pipeline_code(families: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What a pipeline's cache key follows: the entry points it runs, main's included, and the
    files of the families it loads by name."""
    files = sorted({path for name in families for path in family_code(name)})
    return ("main", *entry_points_of(families)), tuple(files)


@dataclass(frozen=True, kw_only=True)
class UniverseArgs(StepArgs, PipelineSettings):
    """The parameters of ``universe``: its tickers, how many pipelines at once, and every
    parameter of ``main`` but ``ticker``, passed to each pipeline by the same name."""

    entry_point = "universe"
    tickers: str
    max_pipelines: int = 0


# The universe's own parameters; ``source`` and ``spark_master`` mean something else per pipeline.
OWN = ("tickers", "max_pipelines")


def check(args: UniverseArgs) -> list[str]:
    """Refuse bad parameters before any pipeline starts; the tickers, in order."""
    tickers = parse_tickers(args.tickers)
    if args.source not in REMOTE_SOURCES and not Path(args.source).is_dir():
        raise PsystockError(
            f"source {args.source!r} is not a folder: give store (the default), yahoo, or a folder with one "
            "<TICKER>.csv per ticker, in Yahoo's layout"
        )
    check_settings(args, spark_master="")  # a universe's pipelines tune in their own process
    parse_rerun(args.rerun, choose_families(args.families))
    if args.max_pipelines < 0:
        raise PsystockError(f"max_pipelines must be 0 (one more than the CPUs) or more, got {args.max_pipelines}")
    if args.spark_master and not args.spark_master.startswith("local"):
        scheme = mlflow.get_tracking_uri().partition(":")[0]
        if scheme not in ("http", "https", "databricks", "postgresql", "mysql"):
            raise PsystockError(
                f"spark_master {args.spark_master!r} runs pipelines on other machines, which cannot log to "
                f"{mlflow.get_tracking_uri()}: set MLFLOW_TRACKING_URI to a tracking server they reach"
            )
    return tickers


def ticker_source(source: str, ticker: str) -> str:
    """Where one ticker's pipeline reads its prices: Yahoo, or ``<folder>/<TICKER>.csv``."""
    return source if source in REMOTE_SOURCES else str(Path(source).resolve() / f"{ticker}.csv")


def pipeline_params(args: UniverseArgs, ticker: str) -> dict[str, str]:
    """``main``'s parameters for one ticker: the universe's, by the same name, with its own source.
    Its pipeline tunes in its own process: Spark, if any, runs the pipelines, not their trials."""
    shared = {f.name: format_value(getattr(args, f.name)) for f in fields(PipelineSettings)}
    return shared | {"ticker": ticker, "source": ticker_source(args.source, ticker), "spark_master": ""}


def pipeline_step(args: UniverseArgs, ticker: str, today: date) -> Step:
    inputs = caching.source_identity(ticker_source(args.source, ticker), parse_day(args.end, "end"), today)
    code_of, code_files = pipeline_code(choose_families(args.families))
    return Step(
        "main",
        pipeline_params(args, ticker),
        run_name=f"main {ticker}",
        inputs=inputs,
        label=ticker,
        tags={names.TAG_TICKER: ticker},
        code_of=code_of,
        code_files=code_files,
    )


def git_source(run_tags: dict[str, str]) -> tuple[str, str | None]:
    """The Git URL and commit a run came from (``mlflow run <git url>``), or ``("", None)`` for a
    project folder: what a Spark worker must fetch to run the same code."""
    source, commit = run_tags.get(MLFLOW_SOURCE_NAME, ""), run_tags.get(MLFLOW_GIT_COMMIT)
    if commit and source and not source.startswith("file:") and not Path(source).exists():
        return source, commit
    return "", None


def results(runner: StepRunner, tickers: list[str]) -> list[TickerResult]:
    """How each ticker's pipeline ended, unless it failed its report's summary, and its champion's life."""
    experiment_id, now = active_run().info.experiment_id, datetime.now(UTC)
    found = []
    for ticker in tickers:
        outcome = runner.outcomes[ticker]
        summary, error = None, outcome.error
        if outcome.status is not StepStatus.FAILED:
            summary, error = _summary(outcome.run_id)
        found.append(
            TickerResult(
                ticker,
                str(outcome.status) if summary else str(StepStatus.FAILED),
                outcome.run_id,
                outcome.seconds,
                summary,
                error,
                champion.life(ticker, experiment_id, now),
            )
        )
    return found


def _summary(main_run_id: str) -> tuple[PipelineSummary | None, str]:
    steps = json.loads(get_run(main_run_id).data.tags.get(names.TAG_STEP_RUNS, "{}"))
    report_run = steps.get("report")
    path = names.artifact(names.REPORT_DIR, names.REPORT_SUMMARY)
    content = artifact_bytes(report_run, path) if report_run else None
    if content is None:
        return None, f"pipeline {main_run_id} finished without {path}: re-run with -P rerun=report"
    return PipelineSummary.from_dict(json.loads(content)), ""


def log_report(args: UniverseArgs, found: list[TickerResult]) -> None:
    """The cross-ticker report on the universe run: HTML, Markdown, CSV tables and the heat map."""
    title = f"psystock universe: {len(found)} tickers"
    matrix = universe.score_matrix(found)
    heat_map = None
    if not matrix.empty:
        ranked_by = next(r.summary.ranked_by for r in found if r.summary is not None)
        figure = plots.heat_map_figure(
            matrix, f"{ranked_by} by ticker", ranked_by, score(args.metric).greater_is_better
        )
        mlflow.log_figure(figure, names.artifact(names.UNIVERSE_DIR, names.HEAT_MAP))
        heat_map = plots.png_bytes(figure)
    mlflow.log_text(
        universe.render_html(title, found, heat_map, args.metric), names.artifact(names.UNIVERSE_DIR, names.REPORT_HTML)
    )
    mlflow.log_text(universe.render_markdown(title, found), names.artifact(names.UNIVERSE_DIR, names.REPORT_MARKDOWN))
    log_csv(universe.tickers_table(found), names.artifact(names.UNIVERSE_DIR, names.UNIVERSE_TICKERS))
    log_csv(matrix, names.artifact(names.UNIVERSE_DIR, names.UNIVERSE_SCORES), index=True)
    log_csv(universe.win_counts(found), names.artifact(names.UNIVERSE_DIR, names.UNIVERSE_WINS))
    failed = [r.ticker for r in found if r.failed]
    registered = [r for r in found if r.summary is not None and r.summary.decision == universe.REGISTERED]
    mlflow.set_tags(
        {
            names.TAG_PIPELINE_RUNS: json.dumps({r.ticker: r.run_id for r in found}),
            names.TAG_FAILED_TICKERS: ",".join(failed),
            names.TAG_VERDICT: universe.headline(found)[:5000],
        }
    )
    mlflow.log_metrics({"tickers": len(found), "failed_tickers": len(failed), "registered_tickers": len(registered)})


def run_universe(
    args: UniverseArgs, tickers: list[str], runner: StepRunner, today: date | None = None
) -> list[TickerResult]:
    """Every ticker's pipeline (reused, run here, or run on Spark), then the report. A failed
    pipeline is a result: the others' stand, and the caller decides what failure means."""
    # `python` in main's command is this interpreter, whatever PATH said before.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    runner.start([pipeline_step(args, t, today or date.today()) for t in tickers])
    found = results(runner, tickers)
    log_report(args, found)
    return found


def pipeline_slots(max_pipelines: int, cpus: int | None) -> int:
    """How many pipelines run at once on this machine: ``max_pipelines``, or with 0 one more than
    the CPUs. A pipeline keeps a core busy only part of its time (its tuning is one process, and
    its compare, register and report wait on it), so with one per CPU a core idles whenever a
    pipeline is in those steps, and the last pipeline of a universe ends alone."""
    return max_pipelines or (cpus or 1) + 1


def make_runner(args: UniverseArgs, experiment_id: str, run_id: str, run_tags: dict[str, str]) -> StepRunner:
    """Launches the pipelines: threads here, or Spark tasks on ``spark_master``."""
    slots = pipeline_slots(args.max_pipelines, os.cpu_count())
    runner = StepRunner(
        experiment_id,
        run_id,
        env_manager=args.env_manager,
        # Each main forked warm from this process's servers, and its steps from the same ones: a
        # ticker pays for neither a new interpreter nor servers of its own.
        launcher=args.launcher,
        project_dir=str(PROJECT_ROOT),
        use_cache=args.use_cache.lower() == "true",
        max_parallel=slots,
        families=choose_families(args.families),
    )
    if args.spark_master:
        from psystock import spark

        runner.project_uri, runner.version = git_source(run_tags)
        master = args.spark_master
        runner.remote = lambda launches: spark.run_launches(master, launches, args.max_pipelines)
    return runner


def failure(found: list[TickerResult]) -> PsystockError | None:
    """The error a universe with failed pipelines ends with, naming them; None if none failed."""
    failed = [r for r in found if r.failed]
    if not failed:
        return None
    which = ", ".join(f"{r.ticker} (run {r.run_id or 'none'})" for r in failed)
    return PsystockError(
        f"{len(failed)} of {len(found)} pipelines failed: {which}; the others' results stand, "
        "and the same command runs the failed ones again alone"
    )
