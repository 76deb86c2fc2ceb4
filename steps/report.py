"""report: the page that says what the pipeline found.

Reads: ``compare_run`` (the leaderboard and how it was ranked), ``tuned_run``
(the tuned model's scores and backtest) and ``register_run`` (the gate's
decision and evidence), and through them every candidate's run
(:func:`psystock.mlflow_io.findings.gather`).
Writes: ``report/report.html`` (self-contained: the verdict in one sentence,
the leaderboard ranked by cross-validation with each holdout score and its
interval, the backtest against buy-and-hold with the equity curves, the
gate's evidence, the data, the split, each model's plots),
``report/report.md``, ``report/backtest.csv``, ``plots/equity_curves.png``,
``report/summary.json`` (the numbers a universe's cross-ticker report shows);
tag ``psystock.verdict`` (the first sentence).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow

from psystock import names, report
from psystock.entry_points import StepArgs
from psystock.mlflow_io.findings import gather
from psystock.mlflow_io.lifecycle import run_step
from psystock.mlflow_io.outputs import log_csv


@dataclass(frozen=True, kw_only=True)
class Args(StepArgs):
    entry_point = "report"
    compare_run: str
    tuned_run: str
    register_run: str


def build(args: Args) -> None:
    page = gather(*(names.run_id_of(r) for r in (args.compare_run, args.tuned_run, args.register_run)))
    log_csv(page.findings.backtest, names.artifact(names.REPORT_DIR, names.REPORT_BACKTEST))
    if page.equity is not None:
        mlflow.log_figure(page.equity, names.plot("equity_curves"))
    mlflow.log_dict(page.summary.to_dict(), names.artifact(names.REPORT_DIR, names.REPORT_SUMMARY))
    mlflow.log_text(report.render_html(page.findings), names.artifact(names.REPORT_DIR, names.REPORT_HTML))
    mlflow.log_text(report.render_markdown(page.findings), names.artifact(names.REPORT_DIR, names.REPORT_MARKDOWN))
    mlflow.set_tag(names.TAG_VERDICT, page.sentence[: names.TAG_LIMIT])
    print(page.sentence, flush=True)


if __name__ == "__main__":
    run_step(Args, build)
