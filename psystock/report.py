"""The pipeline's report: one self-contained HTML page (and a Markdown twin) that says what it found.

Pure functions: the caller gathers the numbers (:class:`Findings`) and the
PNG bytes of the figures. The page opens with one sentence, the verdict with
its numbers; then the leaderboard ranked as the choice was made (by
cross-validation on the development period), each holdout score with its
interval; the backtest against buy-and-hold with one equity-curve figure; the
registry gate's evidence; the data and the split; each model's plots. Images
are data URIs and the style is inline, so the page opens offline; wide tables
scroll inside their own box, so the page fits a laptop's window.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from psystock import names
from psystock.leaderboard import COLUMNS, direction
from psystock.names import BASELINE_FAMILY

STYLE = """
*, *::before, *::after { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 1.5em; max-width: 72em; color: #222;
       line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
p.verdict { font-size: 1.15em; padding: 0.8em 1em; border-left: 5px solid #888; background: #f6f6f6; }
p.verdict.registered { border-color: #2a8a2a; background: #eef7ee; }
p.verdict.refused { border-color: #b36b00; background: #fdf5e8; }
p.verdict.challenger { border-color: #2a5d8a; background: #eef3f8; }
.table { overflow-x: auto; max-width: 100%; margin: 0.8em 0; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td.text { text-align: left; }
td.best { font-weight: bold; background: #e6f4e6; }
tr.baseline td { color: #555; font-style: italic; } tr.tuned td { background: #f2f6fc; }
img { max-width: 100%; height: auto; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
.plots figure { margin: 0; max-width: 320px; } .plots img { width: 320px; }
dl { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 2px 1em; }
dt { font-weight: bold; } dd { margin: 0; overflow-wrap: anywhere; }
"""


# The plots of each model the report shows, by title.
MODEL_PLOTS = {"confusion matrix": "confusion_matrix", "ROC curve": "roc_curve", "equity curve": "equity_curve"}
BACKTEST_COLUMNS = ("total_return", "cagr", "sharpe", "max_drawdown", "hit_rate", "exposure", "turnover")
TUNED = "tuned"  # the family column of the tuned model's row


@dataclass(frozen=True)
class Candidate:
    """A run the report shows, as plain values."""

    name: str  # as the report names it: the run name, or "tuned <family>"
    run_id: str
    family: str
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Gate:
    """What the registry gate weighed and decided."""

    metric: str
    decision: str  # registered / refused
    reason: str
    tuned: str  # "tuned logreg"
    baseline: str  # the baseline the decision turned on: the one the model beat by the least
    candidate_score: float | None = None
    baseline_score: float | None = None
    improvement: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    confidence: float | None = None
    registered: str = ""  # the version's models:/ URI
    against: pd.DataFrame | None = None  # a row per baseline: its score, the difference, interval, p-value
    incumbent: str = ""  # the champion the candidate met, if one was in place
    challenge: str = ""  # how the candidate fared against it, in numbers


@dataclass(frozen=True)
class Findings:
    """Everything the report shows."""

    title: str
    metric: str
    ranked_by: str
    holdout_range: str
    leaderboard: pd.DataFrame  # one row per candidate (and the tuned model), best first
    backtest: pd.DataFrame  # one row per strategy and buy-and-hold
    gate: Gate
    dataset: Mapping[str, object]
    split: Mapping[str, object]
    equity_png: bytes | None = None
    chart_png: bytes | None = None
    plots: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)


def number_text(value: float | None, signed: bool = False) -> str:
    """A score as the reports print it: three decimals, signed for differences, n/a when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


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


def verdict(gate: Gate, holdout_range: str) -> str:
    """The report's first sentence: what the pipeline concluded, with the numbers it concluded on."""
    where = f"On the holdout {holdout_range}"
    if gate.improvement is None:
        return f"{where} there was no baseline to beat; nothing registered."
    scored = (
        f"{gate.metric} {number_text(gate.candidate_score)} against {number_text(gate.baseline_score)}, "
        f"a difference of {number_text(gate.improvement, True)} "
        f"[{number_text(gate.low, True)}, {number_text(gate.high, True)}] (p = {number_text(gate.p_value)})"
    )
    beats = f"{where} the {gate.tuned} beats every baseline; against the closest, {gate.baseline}: {scored}"
    if gate.decision == names.Decision.CHALLENGER:
        return (
            f"{beats}; but not the champion {gate.incumbent}, which stays: {gate.challenge}; "
            f"registered as {gate.registered}, its {names.CHALLENGER}."
        )
    if gate.decision == names.Decision.REGISTERED:
        replaced = f"; it replaces the champion {gate.incumbent}: {gate.challenge}" if gate.incumbent else ""
        return f"{beats}{replaced}; registered as {gate.registered}."
    return f"{where} no model beats {gate.baseline}: the {gate.tuned} scores {scored}; nothing registered."


def best_rows(board: pd.DataFrame) -> dict[str, int]:
    """For each score column, the position of its best value (lowest where lower is better)."""
    best = {}
    for column in board.columns:
        sense = direction(column)
        if not sense or not pd.api.types.is_numeric_dtype(board[column]) or board[column].isna().all():
            continue
        values = board[column].reset_index(drop=True)
        best[column] = int(values.idxmax() if sense > 0 else values.idxmin())
    return best


def image_tag(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _facts(facts: Mapping[str, object]) -> str:
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts.items())
    return f"<dl>{items}</dl>"


def html_table(frame: pd.DataFrame, mark_best: bool = True) -> str:
    best = best_rows(frame) if mark_best else {}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for i, row in enumerate(frame.itertuples(index=False)):
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            if isinstance(value, float):
                marked = ' class="best"' if best.get(column) == i else ""
                cells.append(f"<td{marked}>{'' if pd.isna(value) else f'{value:.4f}'}</td>")
            else:
                cells.append(f'<td class="text">{html.escape(str(value))}</td>')
        family = getattr(row, "family", "")
        kind = ' class="baseline"' if family == BASELINE_FAMILY else ' class="tuned"' if family == TUNED else ""
        rows.append(f"<tr{kind}>{''.join(cells)}</tr>")
    return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _gate_facts(gate: Gate) -> dict[str, object]:
    facts: dict[str, object] = {
        "decision": gate.decision,
        "reason": gate.reason,
        "metric": gate.metric,
        "candidate": gate.tuned,
        "decided by": f"{gate.baseline}, the baseline it beats by the least",
    }
    if gate.improvement is not None:
        facts |= {
            f"{gate.tuned}": number_text(gate.candidate_score),
            f"{gate.baseline}": number_text(gate.baseline_score),
            "difference": f"{number_text(gate.improvement, True)} [{number_text(gate.low, True)}, "
            f"{number_text(gate.high, True)}] at {gate.confidence or 0:.0%}",
            "one-sided p-value": number_text(gate.p_value),
        }
    if gate.incumbent:
        facts["champion met"] = gate.incumbent
        facts["against the champion"] = gate.challenge
    if gate.registered:
        alias = names.CHALLENGER if gate.decision == names.Decision.CHALLENGER else names.CHAMPION
        facts["registered"] = f"{gate.registered} ({alias})"
    return facts


def render_html(findings: Findings) -> str:
    """The report page."""
    gate = findings.gate
    figures = "".join(
        f"<h3>{html.escape(name)}</h3><div class='plots'>"
        + "".join(
            f"<figure>{image_tag(png, title)}<figcaption>{html.escape(title)}</figcaption></figure>"
            for title, png in images.items()
        )
        + "</div>"
        for name, images in findings.plots.items()
    )
    equity = image_tag(findings.equity_png, "equity curves on the holdout") if findings.equity_png else ""
    chart = image_tag(findings.chart_png, "leaderboard bar chart") if findings.chart_png else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(findings.title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(findings.title)}</h1>
<p class="verdict {html.escape(gate.decision)}">{html.escape(verdict(gate, findings.holdout_range))}</p>
<h2>Leaderboard</h2>
<p>Ranked by {html.escape(findings.ranked_by)}: the choice of family and baseline, made without the holdout.
Holdout scores ({html.escape(findings.metric)} with its bootstrap interval) are for the record; best value of each
column in bold, baselines in italics, the tuned model shaded.</p>
{html_table(findings.leaderboard)}
{chart}
<h2>Backtest on the holdout</h2>
<p>Each model trades its answer: in at the Open, out at the Close of a day it predicts up (after costs);
buy-and-hold holds Close to Close over the same days.</p>
{html_table(findings.backtest)}
{equity}
<h2>The registry gate</h2>{_facts(_gate_facts(gate))}
{html_table(gate.against, mark_best=False) if gate.against is not None else ""}
<h2>Data</h2>{_facts(findings.dataset)}
<h2>Split</h2>{_facts(findings.split)}
<h2>Per model</h2>{figures}
</body></html>
"""


def _markdown_table(frame: pd.DataFrame) -> str:
    best = best_rows(frame)
    shown = frame.astype(object).copy()
    for column in frame.columns:
        if column in COLUMNS or not pd.api.types.is_float_dtype(frame[column]):
            continue
        position = best.get(column)
        shown[column] = [
            "" if pd.isna(v) else (f"**{v:.4f}**" if i == position else f"{v:.4f}") for i, v in enumerate(frame[column])
        ]
    return str(shown.to_markdown(index=False))


def render_markdown(findings: Findings) -> str:
    """The report as Markdown: the verdict, the tables (best values in bold), the gate and the facts."""

    def facts(d: Mapping[str, object]) -> str:
        return "\n".join(f"- **{k}**: {v}" for k, v in d.items())

    against = findings.gate.against
    comparisons = f"{against.to_markdown(index=False, floatfmt='.4f')}\n\n" if against is not None else ""
    return (
        f"# {findings.title}\n\n{verdict(findings.gate, findings.holdout_range)}\n\n"
        f"## Leaderboard (ranked by {findings.ranked_by})\n\n{_markdown_table(findings.leaderboard)}\n\n"
        f"## Backtest on the holdout\n\n{_markdown_table(findings.backtest)}\n\n"
        f"## The registry gate\n\n{facts(_gate_facts(findings.gate))}\n\n{comparisons}"
        f"## Data\n\n{facts(findings.dataset)}\n\n## Split\n\n{facts(findings.split)}\n"
    )


def leaderboard_rows(board: pd.DataFrame, tuned: Candidate, metric: str, ranked_by: str) -> pd.DataFrame:
    """The compare leaderboard's essential columns, with the tuned model's row ranked among them."""
    keep = [
        *COLUMNS,
        ranked_by,
        names.cv_std(metric),
        names.test_metric(metric),
        names.ci_low(metric),
        names.ci_high(metric),
        "backtest_sharpe",
        "backtest_total_return",
    ]
    keep = list(dict.fromkeys(c for c in keep if c in board.columns))
    numbers = keep[len(COLUMNS) :]
    row = {
        "rank": "",
        "family": TUNED,
        "run_name": tuned.name,
        "run_id": tuned.run_id,
        **{c: tuned.metrics.get(c, float("nan")) for c in numbers},
    }
    rows = pd.concat([board[keep].astype({"rank": object}), pd.DataFrame([row])], ignore_index=True)
    rows[numbers] = rows[numbers].astype(float)
    rows = rows[[c for c in rows.columns if c != "run_id"] + ["run_id"]]  # the id last: for looking up, not reading
    ascending = direction(ranked_by) < 0
    return rows.sort_values(ranked_by, ascending=ascending, kind="stable", na_position="last").reset_index(drop=True)


def backtest_rows(candidates: Sequence[Candidate]) -> pd.DataFrame:
    """One row per candidate that was backtested, then buy-and-hold over the same days."""
    rows = [
        {
            "strategy": c.name,
            **{k: c.metrics.get(f"{names.BACKTEST}_{k}") for k in BACKTEST_COLUMNS},
            "sharpe_ci_low": c.metrics.get(names.BACKTEST_SHARPE_CI_LOW),
            "sharpe_ci_high": c.metrics.get(names.BACKTEST_SHARPE_CI_HIGH),
        }
        for c in candidates
        if f"{names.BACKTEST}_sharpe" in c.metrics
    ]
    if rows:
        m = candidates[0].metrics
        rows.append({"strategy": "buy and hold", **{k: m.get(f"{names.BUY_AND_HOLD}_{k}") for k in BACKTEST_COLUMNS}})
    return pd.DataFrame(rows)


def comparisons(metrics: Mapping[str, float], baselines: Sequence[str], metric: str) -> pd.DataFrame | None:
    """A row per baseline the gate weighed (from the register run's ``metrics``): its holdout
    score, the difference, its interval, p-value."""
    rows = [
        {
            "baseline": name,
            metric: metrics[names.against(name, metric)],
            "difference": metrics[names.against(name, names.IMPROVEMENT)],
            "ci_low": metrics[names.against(name, names.IMPROVEMENT_CI_LOW)],
            "ci_high": metrics[names.against(name, names.IMPROVEMENT_CI_HIGH)],
            "p_value": metrics[names.against(name, names.P_VALUE)],
        }
        for name in baselines
        if names.against(name, metric) in metrics
    ]
    return pd.DataFrame(rows) if rows else None


def gate_of(
    metric: str,
    tags: Mapping[str, str],
    metrics: Mapping[str, float],
    confidence: float,
    tuned: str,
    baselines: Sequence[str],
) -> Gate:
    """The gate as a register run's ``tags`` and ``metrics`` record it."""
    return Gate(
        metric=metric,
        decision=tags.get(names.TAG_DECISION, "?"),
        reason=tags.get(names.TAG_REASON, ""),
        tuned=tuned,
        baseline=tags.get(names.TAG_GATE_BASELINE) or "the baselines",
        candidate_score=metrics.get(names.gate_candidate_metric(metric)),
        baseline_score=metrics.get(names.gate_baseline_metric(metric)),
        improvement=metrics.get(names.IMPROVEMENT),
        low=metrics.get(names.IMPROVEMENT_CI_LOW),
        high=metrics.get(names.IMPROVEMENT_CI_HIGH),
        p_value=metrics.get(names.P_VALUE),
        confidence=confidence,
        registered=tags.get(names.TAG_REGISTERED_MODEL, ""),
        against=comparisons(metrics, baselines, metric),
        incumbent=tags.get(names.TAG_INCUMBENT, ""),
        challenge=tags.get(names.TAG_CHALLENGE, ""),
    )


def pipeline_summary(
    board: pd.DataFrame,
    choice: Mapping[str, str],
    tuned_metrics: Mapping[str, float],
    gate: Gate,
    dataset: Mapping[str, object],
    ranked_by: str,
    sentence: str,
) -> PipelineSummary:
    """What this pipeline found, as a universe's cross-ticker report shows it: the leaderboard, the
    compare run's ``choice`` (its tags: winner and best baseline), the tuned model's metrics, the gate."""
    is_baseline = board["family"] == BASELINE_FAMILY
    label = board["run_name"].where(is_baseline, board["family"])
    by_run = board.set_index("run_id")

    def row_value(run_id: str, column: str) -> float | None:
        if run_id not in by_run.index or column not in by_run.columns:
            return None
        value = float(by_run.at[run_id, column])
        return None if math.isnan(value) else value

    winner = choice.get(names.TAG_WINNER_RUN, "")
    first, _, last = str(dataset.get("range", "? to ?")).partition(" to ")
    return PipelineSummary(
        ticker=str(dataset.get("ticker", "?")),
        first_date=first,
        last_date=last,
        metric=gate.metric,
        ranked_by=ranked_by,
        family=choice.get(names.TAG_WINNER_FAMILY, "?"),
        score=row_value(winner, ranked_by),
        score_std=row_value(winner, names.cv_std(gate.metric)) if ranked_by == names.cv_mean(gate.metric) else None,
        best_baseline=choice.get(names.TAG_BEST_BASELINE, ""),
        best_baseline_score=row_value(choice.get(names.TAG_BEST_BASELINE_RUN, ""), ranked_by),
        decision=gate.decision,
        gate_baseline=gate.baseline,
        improvement=gate.improvement,
        ci_low=gate.low,
        ci_high=gate.high,
        confidence=gate.confidence,
        sharpe=tuned_metrics.get(f"{names.BACKTEST}_sharpe"),
        buy_and_hold_sharpe=tuned_metrics.get(f"{names.BUY_AND_HOLD}_sharpe"),
        registered=gate.registered,
        verdict=sentence,
        scores=dict(zip(label, board[ranked_by].astype(float), strict=True)),
        baselines=tuple(label[is_baseline]),
    )
