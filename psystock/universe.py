"""A universe of tickers side by side: what each pipeline found, and the page that says it.

Pure functions. Each pipeline's report step writes a :class:`PipelineSummary`
(``report/summary.json``); the universe gathers one :class:`TickerResult`
per ticker and renders the cross-ticker report: a one-line headline, one row
per ticker (the family the selection chose, its CV score and spread, the best
baseline, the gate's decision with its interval, the backtest's Sharpe ratio
against buy-and-hold, the registered version), a heat map of ticker by
candidate on the selection score, and how often each family won.
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from psystock import report

REGISTERED = "registered"


@dataclass(frozen=True)
class PipelineSummary:
    """What one pipeline found, in the numbers the cross-ticker report shows."""

    ticker: str
    first_date: str
    last_date: str
    metric: str  # the score the gate judges by (mcc)
    ranked_by: str  # the run metric the selection ranked by (cv_mcc_mean)
    family: str  # the model family the selection chose
    score: float | None  # its ranking score
    score_std: float | None  # its spread over the folds
    best_baseline: str
    best_baseline_score: float | None
    decision: str  # registered / refused
    gate_baseline: str  # the baseline the decision turned on
    improvement: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float | None
    sharpe: float | None  # the tuned model's backtest on the holdout
    buy_and_hold_sharpe: float | None
    registered: str  # the version's models:/ URI, or ""
    verdict: str
    scores: dict[str, float] = field(default_factory=dict)  # every candidate's ranking score, by name
    baselines: tuple[str, ...] = ()  # which of ``scores`` are baselines

    def to_dict(self) -> dict[str, Any]:
        found = dataclasses.asdict(self)
        found["baselines"] = list(self.baselines)
        return found

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineSummary:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["baselines"] = tuple(values.get("baselines", ()))
        return cls(**values)

    @property
    def range(self) -> str:
        return f"{self.first_date} to {self.last_date}"


@dataclass(frozen=True)
class TickerResult:
    """One ticker's pipeline in a universe: how it ended and, unless it failed, what it found."""

    ticker: str
    status: str  # finished / cached / FAILED
    run_id: str
    seconds: float | None = None
    summary: PipelineSummary | None = None
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.summary is None


def _number(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def gate_text(summary: PipelineSummary) -> str:
    """The gate's decision in a few words: ``registered: +0.041 [+0.006, +0.078] vs always_up``."""
    if summary.improvement is None:
        return summary.decision
    interval = f"[{_number(summary.ci_low, True)}, {_number(summary.ci_high, True)}]"
    return f"{summary.decision}: {_number(summary.improvement, True)} {interval} vs {summary.gate_baseline}"


def status_line(result: TickerResult) -> str:
    """One console line per ticker: status, run, time, and the winner and verdict (or the error)."""
    took = f"{result.seconds:6.1f} s" if result.seconds is not None else " " * 8
    head = f"  {result.ticker:<10} {result.status:<8} run {result.run_id or '-':<32} {took}"
    if result.summary is None:
        return f"{head}  {result.error}"
    return f"{head}  {result.summary.family:<8} {gate_text(result.summary)}"


def tickers_table(results: Sequence[TickerResult]) -> pd.DataFrame:
    """One row per ticker, in the universe's order."""
    rows = []
    for r in results:
        s = r.summary
        rows.append(
            {
                "ticker": r.ticker,
                "status": r.status,
                "family": s.family if s else "",
                "cv score": s.score if s else math.nan,
                "cv sd": s.score_std if s and s.score_std is not None else math.nan,
                "best baseline": s.best_baseline if s else "",
                "baseline cv score": s.best_baseline_score if s and s.best_baseline_score is not None else math.nan,
                "gate": s.decision if s else "",
                "improvement": _or_nan(s.improvement if s else None),
                "ci low": _or_nan(s.ci_low if s else None),
                "ci high": _or_nan(s.ci_high if s else None),
                "vs baseline": s.gate_baseline if s else "",
                "sharpe": _or_nan(s.sharpe if s else None),
                "buy-and-hold sharpe": _or_nan(s.buy_and_hold_sharpe if s else None),
                "registered": s.registered if s else "",
                "error": r.error,
                "run_id": r.run_id,
            }
        )
    return pd.DataFrame(rows)


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def score_matrix(results: Sequence[TickerResult]) -> pd.DataFrame:
    """Ticker by candidate (model families first, then baselines) on the selection score."""
    found = [r.summary for r in results if r.summary is not None]
    families: list[str] = []
    baselines: list[str] = []
    for s in found:
        for name in s.scores:
            target = baselines if name in s.baselines else families
            if name not in families and name not in baselines:
                target.append(name)
    columns = families + baselines
    return pd.DataFrame(
        [[s.scores.get(c, math.nan) for c in columns] for s in found],
        index=pd.Index([s.ticker for s in found], name="ticker"),
        columns=columns,
        dtype=float,
    )


def win_counts(results: Sequence[TickerResult]) -> pd.DataFrame:
    """Per family: on how many tickers the selection chose it, and how many of those it registered."""
    found = [r.summary for r in results if r.summary is not None]
    families = list(dict.fromkeys(s.family for s in found))
    rows = [
        {
            "family": f,
            "chosen": sum(s.family == f for s in found),
            "registered": sum(s.family == f and s.decision == REGISTERED for s in found),
        }
        for f in families
    ]
    frame = pd.DataFrame(rows, columns=["family", "chosen", "registered"])
    return frame.sort_values(["chosen", "registered"], ascending=False, kind="stable").reset_index(drop=True)


def headline(results: Sequence[TickerResult]) -> str:
    """The report's first line: how many tickers a model earned its registration on, which
    family the selection chose how often, and what failed."""
    found = [r.summary for r in results if r.summary is not None]
    failed = [r.ticker for r in results if r.summary is None]
    total = len(results)
    registered = [s.ticker for s in found if s.decision == REGISTERED]
    if registered:
        gate = (
            f"a model beat every baseline on the holdout for {len(registered)} of {total} tickers "
            f"({', '.join(registered)})"
        )
    else:
        gate = f"no model beat every baseline on the holdout for any of the {total} tickers"
    parts = [gate]
    wins = win_counts(results)
    if len(wins):
        parts.append("the selection chose " + ", ".join(f"{row.family} for {row.chosen}" for row in wins.itertuples()))
    parts.append(f"{len(failed)} failed" + (f" ({', '.join(failed)})" if failed else ""))
    ranges = sorted({s.range for s in found})
    where = f" ({ranges[0]})" if len(ranges) == 1 else ""
    return f"{total} tickers{where}: " + "; ".join(parts) + "."


def render_html(title: str, results: Sequence[TickerResult], heat_map_png: bytes | None, metric: str) -> str:
    """The cross-ticker page: headline, the table, the heat map and the win counts."""
    table = tickers_table(results)
    wins = win_counts(results)
    ranked_by = next((r.summary.ranked_by for r in results if r.summary is not None), metric)
    heat = report.image_tag(heat_map_png, f"heat map of {ranked_by}") if heat_map_png else ""
    registered = sum(1 for r in results if r.summary is not None and r.summary.decision == REGISTERED)
    verdict_class = REGISTERED if registered else "refused"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{report.STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="verdict {verdict_class}">{html.escape(headline(results))}</p>
<h2>Tickers</h2>
<p>Per ticker: the family the selection chose and its {html.escape(ranked_by)} (mean and sd over the
walk-forward folds of the development period); the best baseline on the same score; the registry gate's
decision on the holdout ({html.escape(metric)} difference against the baseline it turned on, with its
bootstrap interval); the tuned model's backtest Sharpe ratio against buy-and-hold over the holdout; the
registered version, if any.</p>
{report.html_table(table, mark_best=False)}
<h2>Selection score by ticker and candidate</h2>
<p>{html.escape(ranked_by)} of every model family (default parameters) and baseline; each ticker's best
framed.</p>
{heat}
<h2>How often each family won</h2>
{report.html_table(wins, mark_best=False)}
</body></html>
"""


def render_markdown(title: str, results: Sequence[TickerResult]) -> str:
    """The cross-ticker report as Markdown."""
    table = tickers_table(results).drop(columns=["run_id"])
    matrix = score_matrix(results)
    wins = win_counts(results)
    return (
        f"# {title}\n\n{headline(results)}\n\n## Tickers\n\n{table.to_markdown(index=False, floatfmt='.4f')}\n\n"
        f"## Selection score by ticker and candidate\n\n{matrix.to_markdown(floatfmt='.4f')}\n\n"
        f"## How often each family won\n\n{wins.to_markdown(index=False)}\n"
    )
