"""report: the page that says what the pipeline found.

Reads: ``compare_run`` (the leaderboard and how it was ranked), ``tuned_run``
(the tuned model's scores and backtest) and ``register_run`` (the gate's
decision and evidence), and through them every candidate's run.
Writes: ``report/report.html`` (self-contained: the verdict in one sentence,
the leaderboard ranked by cross-validation with each holdout score and its
interval, the backtest against buy-and-hold with the equity curves, the
gate's evidence, the data, the split, each model's plots),
``report/report.md``, ``report/backtest.csv``, ``plots/equity_curves.png``,
``report/summary.json`` (the numbers a universe's cross-ticker report shows);
tag ``psystock.verdict`` (the first sentence).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import mlflow
import pandas as pd
from mlflow.entities import Run

from psystock import PsystockError, leaderboard, names, plots, report
from psystock.entry_points import StepArgs
from psystock.mlflow_io import lineage
from psystock.mlflow_io.inputs import artifact_bytes, resolve_input
from psystock.mlflow_io.lifecycle import get_run, run_step
from psystock.mlflow_io.outputs import log_csv

log = logging.getLogger("psystock.report")

# The plots of each model the report shows, by title.
MODEL_PLOTS = {"confusion matrix": "confusion_matrix", "ROC curve": "roc_curve", "equity curve": "equity_curve"}
BACKTEST_COLUMNS = ("total_return", "cagr", "sharpe", "max_drawdown", "hit_rate", "exposure", "turnover")
TUNED = "tuned"  # the family column of the tuned model's row


@dataclass(frozen=True, kw_only=True)
class Args(StepArgs):
    entry_point = "report"
    compare_run: str
    tuned_run: str
    register_run: str


def _returns(run: Run) -> pd.DataFrame | None:
    try:
        return pd.read_csv(
            resolve_input(names.run_uri(run.info.run_id, names.BACKTEST_RETURNS), "returns.csv", "backtest")
        )
    except PsystockError:  # a run without a backtest (a table without prices) has no curve to draw
        return None


def display_name(run: Run) -> str:
    """A candidate's run name; the tune run as ``tuned <family>``."""
    if run.data.tags.get(names.TAG_STEP) == "tune":
        return f"tuned {run.data.tags.get(names.TAG_FAMILY, 'model')}"
    return str(run.info.run_name)


def leaderboard_rows(board: pd.DataFrame, tuned: Run, metric: str, ranked_by: str) -> pd.DataFrame:
    """The compare leaderboard's essential columns, with the tuned model's row ranked among them."""
    keep = [
        *leaderboard.COLUMNS,
        ranked_by,
        names.cv_std(metric),
        names.test_metric(metric),
        names.ci_low(metric),
        names.ci_high(metric),
        "backtest_sharpe",
        "backtest_total_return",
    ]
    keep = list(dict.fromkeys(c for c in keep if c in board.columns))
    row = {
        "rank": "",
        "family": TUNED,
        "run_name": display_name(tuned),
        "run_id": tuned.info.run_id,
        **{c: tuned.data.metrics.get(c, float("nan")) for c in keep[len(leaderboard.COLUMNS) :]},
    }
    rows = pd.concat([board[keep].astype({"rank": object}), pd.DataFrame([row])], ignore_index=True)
    numbers = keep[len(leaderboard.COLUMNS) :]
    rows[numbers] = rows[numbers].astype(float)
    rows = rows[[c for c in rows.columns if c != "run_id"] + ["run_id"]]  # the id last: for looking up, not reading
    ascending = leaderboard.direction(ranked_by) < 0
    return rows.sort_values(ranked_by, ascending=ascending, kind="stable", na_position="last").reset_index(drop=True)


def backtest_rows(runs: list[Run]) -> pd.DataFrame:
    """One row per strategy that was backtested, then buy-and-hold over the same days."""
    rows = []
    for run in runs:
        m = run.data.metrics
        if f"{names.BACKTEST}_sharpe" not in m:
            continue
        rows.append(
            {
                "strategy": display_name(run),
                **{c: m.get(f"{names.BACKTEST}_{c}") for c in BACKTEST_COLUMNS},
                "sharpe_ci_low": m.get(names.BACKTEST_SHARPE_CI_LOW),
                "sharpe_ci_high": m.get(names.BACKTEST_SHARPE_CI_HIGH),
            }
        )
    if rows:
        m = runs[0].data.metrics
        rows.append({"strategy": "buy and hold", **{c: m.get(f"{names.BUY_AND_HOLD}_{c}") for c in BACKTEST_COLUMNS}})
    return pd.DataFrame(rows)


def build(args: Args) -> None:
    compare = get_run(names.run_id_of(args.compare_run))
    tuned = get_run(names.run_id_of(args.tuned_run))
    register = get_run(names.run_id_of(args.register_run))
    board = pd.read_csv(
        resolve_input(names.run_uri(compare.info.run_id, names.LEADERBOARD_DIR), names.LEADERBOARD_FILE, "compare_run")
    )
    ranked_by = compare.data.tags[names.TAG_RANKED_BY]
    metric = register.data.params.get("metric", ranked_by)
    candidates = {run_id: get_run(run_id) for run_id in board["run_id"]}
    models = [
        candidates[r] for r, f in zip(board["run_id"], board["family"], strict=True) if f != names.BASELINE_FAMILY
    ]
    best_baseline = candidates.get(compare.data.tags.get(names.TAG_BEST_BASELINE_RUN, ""))
    shown = [*models, *([best_baseline] if best_baseline else []), tuned]
    table = backtest_rows([*candidates.values(), tuned])
    log_csv(table, names.artifact(names.REPORT_DIR, names.REPORT_BACKTEST))

    equity_png = None
    found = {display_name(run): _returns(run) for run in shown}
    curves = {name: days for name, days in found.items() if days is not None}
    if curves:
        days = next(iter(curves.values()))
        series = {name: frame["strategy"] for name, frame in curves.items()} | {"buy and hold": days["buy_and_hold"]}
        figure = plots.equity_figure(pd.to_datetime(days["date"]), series, "Holdout: growth of 1, after costs")
        mlflow.log_figure(figure, names.plot("equity_curves"))
        equity_png = plots.png_bytes(figure)

    baseline_names = [
        r.info.run_name for r in candidates.values() if r.data.tags.get(names.TAG_FAMILY) == names.BASELINE_FAMILY
    ]
    gate = _gate(register, tuned, metric, baseline_names)
    dataset = lineage.dataset_facts(tuned)
    holdout_range = register.data.tags.get(names.TAG_HOLDOUT_RANGE, "?")
    title = f"psystock: {dataset.get('ticker', '')} {dataset.get('range', '')}".strip()
    findings = report.Findings(
        title=title,
        metric=metric,
        ranked_by=ranked_by,
        holdout_range=holdout_range,
        leaderboard=leaderboard_rows(board, tuned, metric, ranked_by),
        backtest=table,
        gate=gate,
        dataset=dataset,
        split=lineage.split_facts(tuned),
        equity_png=equity_png,
        chart_png=artifact_bytes(compare.info.run_id, names.artifact(names.LEADERBOARD_DIR, names.LEADERBOARD_CHART)),
        plots={
            display_name(run): {
                t: png for t, n in MODEL_PLOTS.items() if (png := artifact_bytes(run.info.run_id, names.plot(n)))
            }
            for run in [*models, tuned]
        },
    )
    sentence = report.verdict(gate, holdout_range)
    summary = pipeline_summary(board, compare, tuned, gate, dataset, ranked_by, sentence)
    mlflow.log_dict(summary.to_dict(), names.artifact(names.REPORT_DIR, names.REPORT_SUMMARY))
    mlflow.log_text(report.render_html(findings), names.artifact(names.REPORT_DIR, names.REPORT_HTML))
    mlflow.log_text(report.render_markdown(findings), names.artifact(names.REPORT_DIR, names.REPORT_MARKDOWN))
    mlflow.set_tag(names.TAG_VERDICT, sentence[:5000])
    print(sentence, flush=True)


def pipeline_summary(
    board: pd.DataFrame,
    compare: Run,
    tuned: Run,
    gate: report.Gate,
    dataset: dict[str, object],
    ranked_by: str,
    sentence: str,
) -> report.PipelineSummary:
    """What this pipeline found, as a universe's cross-ticker report shows it."""
    is_baseline = board["family"] == names.BASELINE_FAMILY
    label = board["run_name"].where(is_baseline, board["family"])
    scores = dict(zip(label, board[ranked_by].astype(float), strict=True))
    by_run = board.set_index("run_id")
    spread = names.cv_std(gate.metric)

    def row_value(run_id: str, column: str) -> float | None:
        if run_id not in by_run.index or column not in by_run.columns:
            return None
        value = float(by_run.at[run_id, column])
        return None if math.isnan(value) else value

    winner = compare.data.tags.get(names.TAG_WINNER_RUN, "")
    baseline = compare.data.tags.get(names.TAG_BEST_BASELINE_RUN, "")
    first, _, last = str(dataset.get("range", "? to ?")).partition(" to ")
    metrics = tuned.data.metrics
    return report.PipelineSummary(
        ticker=str(dataset.get("ticker", "?")),
        first_date=first,
        last_date=last,
        metric=gate.metric,
        ranked_by=ranked_by,
        family=compare.data.tags.get(names.TAG_WINNER_FAMILY, "?"),
        score=row_value(winner, ranked_by),
        score_std=row_value(winner, spread) if ranked_by == names.cv_mean(gate.metric) else None,
        best_baseline=compare.data.tags.get(names.TAG_BEST_BASELINE, ""),
        best_baseline_score=row_value(baseline, ranked_by),
        decision=gate.decision,
        gate_baseline=gate.baseline,
        improvement=gate.improvement,
        ci_low=gate.low,
        ci_high=gate.high,
        confidence=gate.confidence,
        sharpe=metrics.get(f"{names.BACKTEST}_sharpe"),
        buy_and_hold_sharpe=metrics.get(f"{names.BUY_AND_HOLD}_sharpe"),
        registered=gate.registered,
        verdict=sentence,
        scores=scores,
        baselines=tuple(label[is_baseline]),
    )


def comparisons(register: Run, baselines: list[str], metric: str) -> pd.DataFrame | None:
    """A row per baseline the gate weighed: its holdout score, the difference, its interval, p-value."""
    m = register.data.metrics
    rows = [
        {
            "baseline": name,
            metric: m[names.against(name, metric)],
            "difference": m[names.against(name, names.IMPROVEMENT)],
            "ci_low": m[names.against(name, names.IMPROVEMENT_CI_LOW)],
            "ci_high": m[names.against(name, names.IMPROVEMENT_CI_HIGH)],
            "p_value": m[names.against(name, names.P_VALUE)],
        }
        for name in baselines
        if names.against(name, metric) in m
    ]
    return pd.DataFrame(rows) if rows else None


def _gate(register: Run, tuned: Run, metric: str, baselines: list[str]) -> report.Gate:
    m, tags = register.data.metrics, register.data.tags
    return report.Gate(
        metric=metric,
        decision=tags.get(names.TAG_DECISION, "?"),
        reason=tags.get(names.TAG_REASON, ""),
        tuned=display_name(tuned),
        baseline=tags.get(names.TAG_GATE_BASELINE) or "the baselines",
        candidate_score=m.get(names.gate_candidate_metric(metric)),
        baseline_score=m.get(names.gate_baseline_metric(metric)),
        improvement=m.get(names.IMPROVEMENT),
        low=m.get(names.IMPROVEMENT_CI_LOW),
        high=m.get(names.IMPROVEMENT_CI_HIGH),
        p_value=m.get(names.P_VALUE),
        confidence=float(register.data.params.get("confidence", 0.95)),
        registered=tags.get(names.TAG_REGISTERED_MODEL, ""),
        against=comparisons(register, baselines, metric),
    )


if __name__ == "__main__":
    run_step(Args, build)
