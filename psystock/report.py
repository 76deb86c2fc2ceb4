"""The comparison report: one self-contained HTML page (and a Markdown twin).

Pure functions: the caller gathers the leaderboard, the dataset and split
facts and the PNG bytes of each model's plots. Images are embedded as data
URIs and the style is inline, so the page opens offline.
"""

from __future__ import annotations

import base64
import html

import pandas as pd

from psystock.leaderboard import BASELINE, COLUMNS, LOWER_IS_BETTER, NOT_SCORES

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
td.best { font-weight: bold; background: #e6f4e6; }
tr.baseline td { color: #555; font-style: italic; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
.plots figure { margin: 0; } .plots img { width: 320px; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; }
dt { font-weight: bold; }
"""


def best_rows(board: pd.DataFrame) -> dict[str, int]:
    """For each metric column, the position of its best value (lowest where lower is better)."""
    best = {}
    for column in board.columns:
        if (
            column in COLUMNS
            or column in NOT_SCORES
            or not pd.api.types.is_numeric_dtype(board[column])
            or board[column].isna().all()
        ):
            continue
        values = board[column].reset_index(drop=True)
        best[column] = int(values.idxmin() if column in LOWER_IS_BETTER else values.idxmax())
    return best


def _image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _facts(facts: dict[str, object]) -> str:
    return (
        "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts.items()) + "</dl>"
    )


def render_html(
    board: pd.DataFrame,
    metric: str,
    dataset: dict[str, object],
    split: dict[str, object],
    chart: bytes,
    plots: dict[str, dict[str, bytes]],
) -> str:
    """The report page. ``plots`` maps a run name to its images (title -> PNG bytes)."""
    best = best_rows(board)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in board.columns)
    rows = []
    for i, row in enumerate(board.itertuples(index=False)):
        cells = []
        for column, value in zip(board.columns, row, strict=True):
            if isinstance(value, float):
                text = "" if pd.isna(value) else f"{value:.4f}"
                marked = ' class="best"' if best.get(column) == i else ""
                cells.append(f"<td{marked}>{text}</td>")
            else:
                cells.append(f'<td class="text">{html.escape(str(value))}</td>')
        kind = ' class="baseline"' if row.family == BASELINE else ""
        rows.append(f"<tr{kind}>{''.join(cells)}</tr>")
    figures = "".join(
        f"<h3>{html.escape(name)}</h3><div class='plots'>"
        + "".join(
            f"<figure>{_image(png, title)}<figcaption>{html.escape(title)}</figcaption></figure>"
            for title, png in images.items()
        )
        + "</div>"
        for name, images in plots.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>psystock leaderboard</title><style>{STYLE}</style></head>
<body>
<h1>Leaderboard by {html.escape(metric)}</h1>
<h2>Dataset</h2>{_facts(dataset)}
<h2>Split</h2>{_facts(split)}
<h2>Models and baselines</h2>
<p>Best value of each column in bold; baselines in italics.</p>
<table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>
{_image(chart, "leaderboard bar chart")}
<h2>Per model</h2>{figures}
</body></html>
"""


def render_markdown(board: pd.DataFrame, metric: str, dataset: dict[str, object], split: dict[str, object]) -> str:
    """The report as Markdown: facts and the leaderboard, best values in bold."""
    best = best_rows(board)
    shown = board.astype(object).copy()
    for column in board.columns:
        if column in COLUMNS or not pd.api.types.is_float_dtype(board[column]):
            continue
        position = best.get(column)
        shown[column] = [
            "" if pd.isna(v) else (f"**{v:.4f}**" if i == position else f"{v:.4f}") for i, v in enumerate(board[column])
        ]
    facts = lambda d: "\n".join(f"- **{k}**: {v}" for k, v in d.items())  # noqa: E731
    return (
        f"# Leaderboard by {metric}\n\n## Dataset\n\n{facts(dataset)}\n\n## Split\n\n{facts(split)}\n\n"
        f"## Models and baselines\n\n{shown.to_markdown(index=False)}\n"
    )
