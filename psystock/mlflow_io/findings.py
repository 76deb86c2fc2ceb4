"""What the report reads from the runs: a compare, a tune and a register run, and through the
leaderboard every candidate's run, turned into the plain :class:`psystock.report.Findings`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from mlflow.entities import Run

from psystock import PsystockError, names, plots, report
from psystock.mlflow_io import lineage
from psystock.mlflow_io.inputs import artifact_bytes, load_leaderboard, read_input_csv
from psystock.mlflow_io.lifecycle import get_run


@dataclass(frozen=True)
class Page:
    """A report's content: what it shows, the cross-ticker summary, and the equity figure (None
    without a backtest)."""

    findings: report.Findings
    summary: report.PipelineSummary
    sentence: str
    equity: Any


def candidate(run: Run) -> report.Candidate:
    """A run as the report shows it; the tune run is named ``tuned <family>``."""
    family = run.data.tags.get(names.TAG_FAMILY, "?")
    name = f"{report.TUNED} {family}" if run.data.tags.get(names.TAG_STEP) == "tune" else str(run.info.run_name)
    return report.Candidate(name, run.info.run_id, family, run.data.metrics)


def gather(compare_id: str, tuned_id: str, register_id: str) -> Page:
    """Everything the report of one pipeline shows, read from its runs."""
    compare, tuned, register = get_run(compare_id), get_run(tuned_id), get_run(register_id)
    board = load_leaderboard(compare.info.run_id)
    ranked_by = compare.data.tags[names.TAG_RANKED_BY]
    metric = register.data.params.get("metric", ranked_by)
    runs = {run_id: get_run(run_id) for run_id in board["run_id"]}
    models = [runs[r] for r, f in zip(board["run_id"], board["family"], strict=True) if f != names.BASELINE_FAMILY]
    best_baseline = runs.get(compare.data.tags.get(names.TAG_BEST_BASELINE_RUN, ""))
    shown = [*models, *([best_baseline] if best_baseline else []), tuned]
    baselines = [r.info.run_name for r in runs.values() if r.data.tags.get(names.TAG_FAMILY) == names.BASELINE_FAMILY]
    tuned_candidate = candidate(tuned)
    gate = report.gate_of(
        metric,
        register.data.tags,
        register.data.metrics,
        float(register.data.params.get("confidence", 0.95)),
        tuned_candidate.name,
        baselines,
    )
    equity, equity_png = _equity(shown)
    dataset = lineage.dataset_facts(tuned)
    holdout_range = register.data.tags.get(names.TAG_HOLDOUT_RANGE, "?")
    findings = report.Findings(
        title=f"psystock: {dataset.get('ticker', '')} {dataset.get('range', '')}".strip(),
        metric=metric,
        ranked_by=ranked_by,
        holdout_range=holdout_range,
        leaderboard=report.leaderboard_rows(board, tuned_candidate, metric, ranked_by),
        backtest=report.backtest_rows([*map(candidate, runs.values()), tuned_candidate]),
        gate=gate,
        dataset=dataset,
        split=lineage.split_facts(tuned),
        equity_png=equity_png,
        chart_png=artifact_bytes(compare.info.run_id, names.artifact(names.LEADERBOARD_DIR, names.LEADERBOARD_CHART)),
        plots={candidate(run).name: _model_plots(run.info.run_id) for run in [*models, tuned]},
    )
    sentence = report.verdict(gate, holdout_range)
    summary = report.pipeline_summary(board, compare.data.tags, tuned.data.metrics, gate, dataset, ranked_by, sentence)
    return Page(findings, summary, sentence, equity)


def _model_plots(run_id: str) -> dict[str, bytes]:
    found = {title: artifact_bytes(run_id, names.plot(name)) for title, name in report.MODEL_PLOTS.items()}
    return {title: png for title, png in found.items() if png}


def _equity(runs: list[Run]) -> tuple[Any, bytes | None]:
    """The holdout equity curves of the runs that have them, with buy-and-hold: the figure and its PNG."""
    found = {candidate(run).name: _returns(run) for run in runs}
    curves = {name: days for name, days in found.items() if days is not None}
    if not curves:
        return None, None
    days = next(iter(curves.values()))
    series = {name: frame["strategy"] for name, frame in curves.items()} | {"buy and hold": days["buy_and_hold"]}
    figure = plots.equity_figure(pd.to_datetime(days["date"]), series, "Holdout: growth of 1, after costs")
    return figure, plots.png_bytes(figure)


def _returns(run: Run) -> pd.DataFrame | None:
    try:
        location = names.run_uri(run.info.run_id, names.BACKTEST_RETURNS)
        return read_input_csv(location, "returns.csv", "backtest")
    except PsystockError:  # a run without a backtest (a table without prices) has no curve to draw
        return None
