"""universe: one ``main`` per ticker, reused when nothing changed, then a cross-ticker report.

Reads: ``tickers`` (``SPY,GLD,IBM`` or ``@file``, one per line, ``#``
comments), ``source`` (``yahoo`` or a folder of ``<TICKER>.csv`` files),
``max_pipelines`` (0: one more than the CPUs) and every parameter of
``main`` but ``ticker``, passed to each pipeline by the same name. Each
pipeline's ``main`` is forked warm (``launcher``), and forks its steps from
this process's servers. With ``spark_master`` each pipeline is a Spark task (from
the same Git URL and commit when the universe runs from Git); its tuning then
runs in its own process.
Writes: one child run per ticker (``main``, tagged ``ticker``; a cached one
as a small run pointing at the reused pipeline), ``universe/report.html``,
``report.md``, ``tickers.csv``, ``scores.csv``, ``wins.csv`` and
``heat_map.png``, tags ``psystock.pipeline_runs`` (ticker -> run id),
``psystock.failed_tickers`` and ``psystock.verdict`` (the report's first
line). Ends non-zero, the run FAILED, if any pipeline failed; the others'
results stand.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # the pipelines' servers import MLflow as this process does, not after it
    from psystock import forking

    forking.warm_up_driver(sys.argv[1:])

from psystock import fanout, pipeline, universe
from psystock.fanout import UniverseArgs as Args
from psystock.mlflow_io.lifecycle import active_run, run_step


def main(args: Args) -> None:
    tickers = fanout.check(args)
    pipeline.keep_launches_cold(args.launcher)
    run = active_run()
    runner = fanout.make_runner(args, run.info.experiment_id, run.info.run_id, run.data.tags)
    found = fanout.run_universe(args, tickers, runner)
    lines = "\n".join(universe.status_line(r) for r in found)
    print(f"universe {run.info.run_id}:\n{lines}\n{universe.headline(found)}", flush=True)
    error = fanout.failure(found)
    if error is not None:
        raise error


if __name__ == "__main__":
    run_step(Args, main)
