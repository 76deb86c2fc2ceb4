"""Figures people would rather look at than read. Matplotlib's object API only:
no pyplot, no global backend, safe in any process."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from psystock.names import BASELINE_FAMILY as BASELINE


def png_bytes(figure: Figure) -> bytes:
    """A figure as PNG bytes, to embed in an HTML page."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def line_figure(x: ArrayLike, y: ArrayLike, title: str, ylabel: str) -> Figure:
    """One series over time."""
    figure = Figure(figsize=(9, 4))
    ax = figure.subplots()
    ax.plot(x, y, linewidth=0.8)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def confusion_matrix_figure(matrix: np.ndarray, title: str, labels: tuple[str, str] = ("down", "up")) -> Figure:
    """A 2x2 confusion matrix (rows: truth, columns: prediction) with counts."""
    figure = Figure(figsize=(4.5, 4))
    ax = figure.subplots()
    ax.imshow(matrix, cmap="Blues")
    for (row, col), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        ax.text(col, row, str(count), ha="center", va="center", color=colour, fontsize=12)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    figure.tight_layout()
    return figure


def leaderboard_figure(board: pd.DataFrame, metric: str) -> Figure:
    """Horizontal bars of ``metric``, best on top; baselines in grey. The axis spans the values
    and 0, so that scores around nothing (a correlation near 0) are seen as such."""
    figure = Figure(figsize=(7, 0.6 * len(board) + 1.5))
    ax = figure.subplots()
    labels = [f"{family} ({name})" for family, name in zip(board["family"], board["run_name"], strict=True)]
    values = board[metric].to_numpy()
    colours = ["#9a9a9a" if family == BASELINE else "#1f77b4" for family in board["family"]]
    ax.barh(labels[::-1], values[::-1], color=colours[::-1])
    for y, value in enumerate(values[::-1]):
        ax.text(
            value,
            y,
            f" {value:.3f}" if value >= 0 else f"{value:.3f} ",
            va="center",
            ha="left" if value >= 0 else "right",
        )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(metric)
    ax.set_title(f"Leaderboard by {metric}")
    low, high = min(0.0, float(np.nanmin(values))), max(0.0, float(np.nanmax(values)))
    pad = 0.25 * (high - low or 1.0)
    ax.set_xlim(low - (pad if low < 0 else 0), high + pad)
    figure.tight_layout()
    return figure


def tuning_figure(losses: list[float], title: str, loss_label: str = "loss") -> Figure:
    """Loss per trial and the best loss so far (failed trials, with an infinite loss, are left out)."""
    figure = Figure(figsize=(7, 4))
    ax = figure.subplots()
    values = np.asarray(losses, dtype=float)
    trials = np.arange(1, len(values) + 1)
    finite = np.isfinite(values)
    ax.plot(trials[finite], values[finite], "o", label="trial loss")
    ax.plot(trials, np.minimum.accumulate(np.where(finite, values, np.inf)), "-", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(loss_label)
    ax.set_title(title)
    ax.legend()
    figure.tight_layout()
    return figure


def sampled_params(trials: pd.DataFrame, params: list[str]) -> list[str]:
    """The parameters among ``params`` that took more than one value over the trials."""
    return [p for p in params if p in trials and trials[p].astype(str).nunique() > 1]


def params_figure(trials: pd.DataFrame, params: list[str], title: str) -> Figure:
    """Each sampled parameter against the loss: numbers on their axis (logarithmic
    when they span more than two decades), choices as categories; best trial marked."""
    shown = sampled_params(trials, params)
    if not shown:
        shown = params[:1]
    columns = min(3, len(shown))
    rows = -(-len(shown) // columns)
    figure = Figure(figsize=(4 * columns, 3.2 * rows))
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    ok = trials[np.isfinite(trials["loss"])]
    best = ok.loc[ok["loss"].idxmin()] if len(ok) else None
    for ax, name in zip(axes, shown, strict=False):  # more axes than parameters: the rest hidden
        place, categorical = _parameter_axis(ax, ok[name])
        x = [place(v) for v in ok[name]]
        if categorical:  # spread the points of one choice so they do not hide each other
            x = list(np.add(x, np.random.default_rng(0).uniform(-0.15, 0.15, len(x))))
        ax.scatter(x, ok["loss"], s=14, alpha=0.7)
        if best is not None:
            ax.scatter([place(best[name])], [best["loss"]], marker="*", s=140, color="tab:red", zorder=3)
        ax.set_xlabel(name)
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
    for ax in axes[len(shown) :]:
        ax.set_visible(False)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def _parameter_axis(ax: Axes, column: pd.Series) -> tuple[Callable[[Any], float], bool]:
    """Set ``ax`` up for one parameter's values: numbers on their own axis (logarithmic when they
    span more than two decades), anything else as categories. Returns where a value goes, and
    whether the axis is categorical."""
    values = pd.to_numeric(column, errors="coerce")
    if values.notna().all() and values.nunique() > 2:
        if (values > 0).all() and values.max() / values.min() > 100:
            ax.set_xscale("log")
        return float, False
    labels = sorted(column.astype(str).unique())
    position = {label: i for i, label in enumerate(labels)}
    ax.set_xticks(range(len(labels)), labels)
    return (lambda value: float(position[str(value)])), True


_CURVES = {
    "roc": ("ROC curve", "false positive rate", "true positive rate"),
    "precision_recall": ("Precision-recall curve", "recall", "precision"),
    "calibration": ("Calibration curve", "mean predicted probability", "observed up-rate"),
}


def curve_figure(kind: str, x: ArrayLike, y: ArrayLike, title: str) -> Figure:
    """One of the curves of :func:`psystock.evaluation.curves`, with its reference line."""
    name, xlabel, ylabel = _CURVES[kind]
    figure = Figure(figsize=(4.5, 4))
    ax = figure.subplots()
    ax.plot(x, y, marker="o" if kind == "calibration" else None, markersize=3)
    if kind in ("roc", "calibration"):
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{name}\n{title}", fontsize=10)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def history_figure(history: dict[str, list[float]], title: str) -> Figure:
    """Per-epoch loss and accuracy (training and validation) of a Keras fit."""
    figure = Figure(figsize=(9, 4))
    loss_ax, acc_ax = figure.subplots(1, 2)
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        for prefix, label in (("", "training"), ("val_", "validation")):
            if f"{prefix}{metric}" in history:
                values = history[f"{prefix}{metric}"]
                ax.plot(range(1, len(values) + 1), values, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
        ax.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def equity_figure(days: pd.Series | pd.DatetimeIndex, returns: dict[str, pd.Series], title: str) -> Figure:
    """Growth of 1 invested, one line per strategy (each a series of daily returns over ``days``)."""
    figure = Figure(figsize=(9, 4.5))
    ax = figure.subplots()
    for name, daily in returns.items():
        growth = np.cumprod(1 + np.asarray(daily, dtype=float))
        holding = name == "buy and hold"
        ax.plot(
            days,
            growth,
            linewidth=1.0,
            label=name,
            color="black" if holding else None,
            linestyle="--" if holding else "-",
        )
    ax.axhline(1.0, color="grey", linewidth=0.6)
    ax.set_ylabel("growth of 1")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def heat_map_figure(matrix: pd.DataFrame, title: str, label: str, greater_is_better: bool = True) -> Figure:
    """Rows (tickers) by columns (model families, then baselines) of one score, each cell written
    out and each row's best framed. Colours diverge around 0 when the scores straddle it (a
    correlation: above or below chance), else run from low to high."""
    from matplotlib.colors import Normalize, TwoSlopeNorm
    from matplotlib.patches import Rectangle

    values = matrix.to_numpy(dtype=float)
    rows, columns = values.shape
    figure = Figure(figsize=(min(12.5, 1.3 * columns + 2.5), 0.42 * rows + 1.8))
    ax = figure.subplots()
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if low < 0 < high:
        norm: Normalize = TwoSlopeNorm(0.0, low, high)
    else:
        norm = Normalize(low, high if high > low else low + 1e-9)
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu", norm=norm, aspect="auto")
    for (row, col), value in np.ndenumerate(values):
        text = "n/a" if not np.isfinite(value) else f"{value:.3f}"
        shade = abs(norm(value) - 0.5) > 0.3 if np.isfinite(value) else False
        ax.text(col, row, text, ha="center", va="center", fontsize=9, color="white" if shade else "black")
    for row in range(rows):
        if np.isfinite(values[row]).any():
            best = int(np.nanargmax(values[row]) if greater_is_better else np.nanargmin(values[row]))
            ax.add_patch(Rectangle((best - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.8))
    ax.set_xticks(range(columns), [str(c) for c in matrix.columns], rotation=30, ha="right")
    ax.set_yticks(range(rows), [str(i) for i in matrix.index])
    ax.set_title(title)
    figure.colorbar(image, ax=ax, label=label, fraction=0.04)
    figure.tight_layout()
    return figure
