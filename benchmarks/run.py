"""Wall time of a cold `mlflow run . -e main` on BTC-USD 2014-2020, and of each step.

Usage: python benchmarks/run.py [--data PATH] [--repeat N] [--out FILE]

Every repetition starts from an empty tracking store (cold). Step times are
the step runs' own start-to-end times as MLflow recorded them; "launch" is
the time main spent between steps (process start-up, run bookkeeping).
Prints a table and writes JSON (default benchmarks/results/bench.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = PROJECT.parent / "shared" / "data" / "BTC-USD.csv"
STEP_ORDER = ["fetch_data", "build_features", "train_logreg", "train_xgboost", "train_keras", "compare", "tune"]


def cold_main(data: Path) -> dict[str, float]:
    """One cold run of main; seconds for the whole command and for each step run."""
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        client = MlflowClient(uri)
        experiment_id = client.create_experiment("bench", artifact_location=f"{tmp}/artifacts")
        env = dict(os.environ, MLFLOW_TRACKING_URI=uri, PSYSTOCK_LOG_LEVEL="WARNING")
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
        command = [os.path.join(os.path.dirname(sys.executable), "mlflow"), "run", str(PROJECT), "-e", "main",
                   "--env-manager", "local", "--experiment-id", experiment_id, "-P", f"source={data}"]
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"main failed:\n{done.stderr[-3000:]}")
        times = {"main (wall)": wall}
        for run in client.search_runs([experiment_id], "tags.`psystock.step` != 'tune_trial'"):
            step = run.data.tags.get("psystock.step", "main")
            times[step if step != "main" else "main (run)"] = (run.info.end_time - run.info.start_time) / 1000
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=PROJECT / "benchmarks" / "results" / "bench.json")
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"benchmark data not found: {args.data} (pass --data PATH to a CSV in Yahoo's layout)")

    samples = []
    for i in range(args.repeat):
        print(f"cold main {i + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
        samples.append(cold_main(args.data))
    names = ["main (wall)", "main (run)", *STEP_ORDER]
    table = {name: statistics.median(s[name] for s in samples) for name in names}

    print(f"\n{'step':<16} {'seconds':>8}   (median of {args.repeat} cold run(s), {os.cpu_count()} CPUs)")
    for name in names:
        print(f"{name:<16} {table[name]:8.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(
        {"cold_main_seconds": table, "samples": samples, "cpus": os.cpu_count(), "python": platform.python_version(),
         "data": str(args.data)}, indent=2))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
