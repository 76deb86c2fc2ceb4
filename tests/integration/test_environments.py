"""`mlflow run --env-manager uv`: the environment built from conda.yaml and the lock, from scratch."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import mlflow
import pytest

from tests.helpers.runs import PROJECT, Store, mlflow_run

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def pins(lines) -> dict[str, str]:
    """name -> version of every ``name==version`` line, names normalised."""
    found = {}
    for line in lines:
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", line.strip())
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return found


def test_a_step_runs_in_an_environment_built_by_uv_from_the_lock(store: Store, btc_csv, tmp_path):
    uv = shutil.which("uv") or os.path.join(os.path.dirname(sys.executable), "uv")  # make install puts it there
    env_root = tmp_path / "envs"
    result = mlflow_run(
        store,
        "fetch_data",
        {"source": btc_csv, "start": "2020-01-01", "end": "2020-12-31"},
        env_manager="uv",
        env={"MLFLOW_ENV_ROOT": str(env_root)},
        timeout=900,
    )
    assert result.returncode == 0, result.output[-3000:]
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.project.env"] == "uv"
    (env_dir,) = env_root.iterdir()
    assert f"source {env_dir}/bin/activate && python -m steps.fetch_data" in result.stderr
    python = env_dir / "bin" / "python"
    assert subprocess.run([str(python), "--version"], capture_output=True, text=True).stdout.strip() == "Python 3.11.7"
    installed = pins(
        subprocess.run(
            [uv, "pip", "freeze", "--python", str(python)], capture_output=True, text=True, check=True
        ).stdout.splitlines()
    )
    locked = pins((PROJECT / "requirements.lock").read_text().splitlines())
    installed.pop("pip", None)  # MLflow installs pip into every environment it builds
    assert installed == locked
