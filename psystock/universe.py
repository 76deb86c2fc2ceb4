"""A universe of tickers side by side: what each pipeline found, and the page that says it.

Pure functions. Each pipeline's report step writes a :class:`PipelineSummary`
(``report/summary.json``); the universe gathers one :class:`TickerResult`
per ticker and renders the cross-ticker report: a one-line headline, one row
per ticker (the family the selection chose, its CV score and spread, the best
baseline, the gate's decision with its interval, the backtest's Sharpe ratio
against buy-and-hold, the registered version; and the champion's life: its
version, its age, its health as ``monitor`` last found it, and whether a
challenger waits), a heat map of ticker by candidate on the selection score,
and how often each family won.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from psystock import report
from psystock.names import BASELINE_FAMILY, Decision
from psystock.report import PipelineSummary, number_text

REGISTERED = Decision.REGISTERED


UNWATCHED = "unwatched"  # a champion no monitor run has scored yet


@dataclass(frozen=True)
class ChampionLife:
    """A ticker's champion after its registration: which version, how many days ago it was
    registered, its health as the latest ``monitor`` of it found it, and a challenger waiting."""

    version: str = ""  # its models:/ URI, "" without a champion
    age_days: int | None = None
    health: str = ""  # ok / degraded / too_few_days, or unwatched
    challenger: str = ""  # the models:/ URI of a newer version with the challenger alias, or ""

    def cells(self) -> dict[str, object]:
        """The columns of ``tickers.csv`` it adds."""
        return {
            "champion": self.version,
            "champion age (days)": math.nan if self.age_days is None else self.age_days,
            "health": self.health,
            "challenger": self.challenger,
        }

    def shown(self) -> dict[str, str]:
        """The columns of the table a person reads."""
        if not self.version:
            return {"champion": "", "health": "", "challenger": ""}
        age = f" ({self.age_days} d)" if self.age_days is not None else ""
        return {
            "champion": f"v{_version(self.version)}{age}",
            "health": self.health,
            "challenger": f"v{_version(self.challenger)}" if self.challenger else "",
        }


def _version(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class TickerResult:
    """One ticker's pipeline in a universe: how it ended and, unless it failed, what it found."""

    ticker: str
    status: str  # finished / cached / FAILED
    run_id: str
    seconds: float | None = None
    summary: PipelineSummary | None = None
    error: str = ""
    life: ChampionLife = ChampionLife()

    @property
    def failed(self) -> bool:
        return self.summary is None


def gate_text(summary: PipelineSummary) -> str:
    """The gate's decision in a few words: ``registered: +0.041 [+0.006, +0.078] vs always_up``."""
    if summary.improvement is None:
        return summary.decision
    interval = f"[{number_text(summary.ci_low, True)}, {number_text(summary.ci_high, True)}]"
    return f"{summary.decision}: {number_text(summary.improvement, True)} {interval} vs {summary.gate_baseline}"


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
                **r.life.cells(),
                "error": r.error,
                "run_id": r.run_id,
            }
        )
    return pd.DataFrame(rows)


def display_table(results: Sequence[TickerResult]) -> pd.DataFrame:
    """The table a person reads: one row per ticker, a score and its spread or interval in one
    cell (``tickers.csv`` keeps every number in a column of its own; :func:`failures` the errors)."""
    rows = []
    for r in results:
        s = r.summary
        row = {"ticker": r.ticker, "status": r.status}
        cells = ("family", "cv score ± sd", "best baseline", "gate", "improvement [interval]", "against")
        row |= dict.fromkeys((*cells, "Sharpe (buy-and-hold)", "registered"), "")
        if s is not None:
            spread = f" ± {number_text(s.score_std)}" if s.score_std is not None else ""
            interval = f"[{number_text(s.ci_low, True)}, {number_text(s.ci_high, True)}]"
            row |= {
                "family": s.family,
                "cv score ± sd": f"{number_text(s.score)}{spread}",
                "best baseline": f"{_short(s.best_baseline)} {number_text(s.best_baseline_score)}",
                "gate": s.decision,
                "improvement [interval]": f"{number_text(s.improvement, True)} {interval}",
                "against": _short(s.gate_baseline),
                "Sharpe (buy-and-hold)": f"{number_text(s.sharpe)} ({number_text(s.buy_and_hold_sharpe)})",
                "registered": f"v{_version(s.registered)}" if s.registered else "",
            }
        rows.append(row | r.life.shown())
    return pd.DataFrame(rows)


def _short(baseline: str) -> str:
    """A baseline's run name without its prefix (``persistence``), where space is scarce."""
    return baseline.removeprefix(f"{BASELINE_FAMILY}_")


def failures(results: Sequence[TickerResult]) -> list[str]:
    """``TICKER: error`` for every failed pipeline."""
    return [f"{r.ticker}: {r.error}" for r in results if r.failed]


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
registered version, if any; the champion (its version and its age in days), its health as its latest
monitor run found it on the days after its refit range, and a challenger waiting, if one is.</p>
{report.html_table(display_table(results), mark_best=False)}
{_failure_list(results)}
<h2>Selection score by ticker and candidate</h2>
<p>{html.escape(ranked_by)} of every model family (default parameters) and baseline; each ticker's best
framed.</p>
{heat}
<h2>How often each family won</h2>
{report.html_table(wins, mark_best=False)}
</body></html>
"""


def _failure_list(results: Sequence[TickerResult]) -> str:
    found = failures(results)
    if not found:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in found)
    return f"<h3>Failed</h3><ul>{items}</ul>"


def render_markdown(title: str, results: Sequence[TickerResult]) -> str:
    """The cross-ticker report as Markdown."""
    failed = "".join(f"- {line}\n" for line in failures(results))
    sections = [
        f"# {title}",
        headline(results),
        "## Tickers",
        display_table(results).to_markdown(index=False),
        *(["### Failed", failed] if failed else []),
        "## Selection score by ticker and candidate",
        score_matrix(results).to_markdown(floatfmt=".4f"),
        "## How often each family won",
        win_counts(results).to_markdown(index=False),
    ]
    return "\n\n".join(sections) + "\n"
