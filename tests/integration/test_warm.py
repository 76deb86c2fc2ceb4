"""The warm server (``make warm``): a step started as a new interpreter hands itself over to it.

The session's server (``warm_server`` in conftest.py) serves every step these tests start; the
tests here check what it promises against a step that starts cold (``PSYSTOCK_WARM=off``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from psystock import handover, names, warm
from tests.helpers.runs import PROJECT, finished, mlflow_run, project_command

pytestmark = pytest.mark.integration

COLD = {handover.NAME: handover.OFF}

# A step of a project of the test's own: says where it runs, then waits to be stopped.
WAITING_STEP = """
import os, signal, sys, time
import psystock
from pathlib import Path

seen = Path(sys.argv[1])
def stopped(signum, frame):
    seen.with_suffix(".stopped").write_text(signal.Signals(signum).name)
    sys.exit(40 + signum)
signal.signal(signal.SIGINT, stopped)
signal.signal(signal.SIGTERM, stopped)
print("waiting on stdout", flush=True)
print("waiting on stderr", file=sys.stderr, flush=True)
seen.write_text(f"{os.getpid()} {psystock.forked_from()} {os.getcwd()} {os.environ.get('ONLY_HERE', '')}")
if sys.argv[2:] == ["die"]:
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(120)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with a ``steps`` package as psystock's own (it hands over on import) and a waiting step."""
    folder = tmp_path / "project"
    (folder / "steps").mkdir(parents=True)
    (folder / "steps" / "__init__.py").write_text((PROJECT / "steps" / "__init__.py").read_text())
    (folder / "steps" / "waiting.py").write_text(WAITING_STEP)
    return folder


def start_waiting(project: Path, seen: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "steps.waiting", str(seen), *args],
        cwd=project,
        env=dict(os.environ, ONLY_HERE="yes", **(env or {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not seen.exists() or not seen.read_text():
        assert process.poll() is None or args == ("die",), process.communicate()
        assert time.monotonic() < deadline, "the step did not start"
        time.sleep(0.05)
    return process


def started_as(seen: Path) -> tuple[int, str, str, str]:
    pid, server, cwd, only_here = (seen.read_text().split(" ") + [""] * 4)[:4]
    return int(pid), server, cwd, only_here


def test_a_step_run_alone_is_forked_warm_and_records_what_a_cold_one_records(module_store, training_data):
    before = warm.status()
    assert before is not None and before["name"] == os.environ[handover.NAME]
    runs = {}
    for how, env in (("warm", {}), ("cold", COLD)):
        done = mlflow_run(module_store, "train_logreg", {"training_data": training_data}, env=env)
        runs[how] = finished(done)
        assert "train_logreg: done" in done.stderr  # the step's own lines reach the command's streams
    hot, cold = runs["warm"], runs["cold"]
    assert hot.data.tags.get(names.TAG_FORKED_FROM), "the step was not forked from the warm server"
    assert names.TAG_FORKED_FROM not in cold.data.tags
    assert {k: v for k, v in hot.data.metrics.items() if "seconds" not in k} == {
        k: v for k, v in cold.data.metrics.items() if "seconds" not in k
    }
    assert hot.data.params == cold.data.params
    after = warm.status()
    assert after is not None and after["launched"] == before["launched"] + 1


def test_a_failing_step_handed_over_fails_with_its_line_and_status(module_store):
    done = mlflow_run(module_store, "fetch_data", {"source": "/no/such/prices.csv"})
    assert done.returncode != 0
    assert done.error_lines() == ["fetch_data: error: price CSV not found: /no/such/prices.csv"]
    run = mlflow.get_run(done.run_id)
    assert run.info.status == "FAILED" and run.data.tags.get(names.TAG_FORKED_FROM)


def test_a_handed_over_step_runs_where_and_with_what_its_interpreter_was_given(project, tmp_path):
    seen = tmp_path / "seen"
    process = start_waiting(project, seen)
    pid, server, cwd, only_here = started_as(seen)
    assert pid != process.pid and server, "the step ran in the interpreter, not forked warm"
    assert (cwd, only_here) == (str(project), "yes")
    process.send_signal(signal.SIGINT)  # Ctrl-C reaches the interpreter; it passes it on
    out, err = process.communicate(timeout=60)
    assert process.returncode == 40 + signal.SIGINT
    assert seen.with_suffix(".stopped").read_text() == "SIGINT"
    assert "waiting on stdout" in out and "waiting on stderr" in err


def test_a_step_whose_interpreter_is_killed_is_stopped(project, tmp_path):
    seen = tmp_path / "seen"
    process = start_waiting(project, seen)
    process.kill()
    process.communicate(timeout=60)
    deadline = time.monotonic() + 30
    while not seen.with_suffix(".stopped").exists():
        assert time.monotonic() < deadline, "the step outlived its interpreter"
        time.sleep(0.05)
    assert seen.with_suffix(".stopped").read_text() == "SIGTERM"


def test_an_interpreter_ends_as_its_step_ended_by_a_signal(project, tmp_path):
    seen = tmp_path / "seen"
    process = start_waiting(project, seen, "die")
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    pid, server, _, _ = started_as(seen)
    assert server and pid != process.pid


@pytest.mark.parametrize(
    "env",
    [COLD, {"PYTHONPATH": "/nowhere"}, {handover.NAME: "no-such-server"}],
    ids=["turned-off", "other-python-settings", "no-server"],
)
def test_a_step_starts_cold_where_the_warm_server_would_not_run_it_as_given(project, tmp_path, env):
    seen = tmp_path / "seen"
    process = start_waiting(project, seen, env=env)
    pid, server, _, _ = started_as(seen)
    assert (pid, server) == (process.pid, "")
    process.terminate()
    _, err = process.communicate(timeout=60)
    said = "Python settings (PYTHONPATH, ...) are not the warm server's; this step starts cold"
    assert (said in err) == ("PYTHONPATH" in env)


def test_the_commands_start_report_and_stop_a_server(tmp_path):
    env = dict(os.environ, PSYSTOCK_WARM=f"commands-{os.getpid()}", PSYSTOCK_WARM_IDLE="5")

    def command(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "psystock.warm", *argv], env=env, capture_output=True, text=True, timeout=120
        )

    assert command("status").stdout.startswith("no warm server is running")
    started = command("start")
    assert started.returncode == 0, started.stderr
    assert f"steps of psystock in {PROJECT}" in started.stdout and "after 5 idle minutes" in started.stdout
    assert command("start").stdout.splitlines()[0] == started.stdout.splitlines()[0]  # the same server
    assert "0 launched, 0 running" in command("status").stdout
    assert command("stop").stdout.strip() == "warm server stopped"
    assert command("stop").stdout.strip() == "no warm server was running"
    env["PSYSTOCK_WARM_IDLE"] = "soon"
    refused = command("start")
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "warm: error: PSYSTOCK_WARM_IDLE must be a number of minutes, got 'soon'"
    )


def test_a_server_ends_itself_once_idle_for_its_time():
    name = f"idle-{os.getpid()}"
    env = dict(os.environ, PSYSTOCK_WARM=name, PSYSTOCK_WARM_IDLE="0.05")  # 3 s
    started = subprocess.run(
        [sys.executable, "-m", "psystock.warm", "start"], env=env, capture_output=True, text=True, timeout=120
    )
    assert started.returncode == 0, started.stderr
    assert warm.status(name) is not None
    deadline = time.monotonic() + 60
    while warm.status(name) is not None:
        assert time.monotonic() < deadline, "the idle server did not end"
        time.sleep(0.2)


def test_psystock_mlflow_is_the_mlflow_command_started_in_the_warm_server(module_store, btc_csv):
    """``psystock-mlflow`` takes ``mlflow``'s arguments: with a warm server it runs there, forked
    from what has imported MLflow, and hands the step it runs over too; with none, it runs in its
    own process. Either way the same run, output and exit status."""
    executable = str(Path(sys.executable).parent / "psystock-mlflow")
    params = {"source": btc_csv, "start": "2020-01-01", "end": "2020-06-30"}
    command = [executable, *project_command(module_store, "fetch_data", params)[1:]]
    runs = {}
    for how, env in (("warm", {}), ("cold", COLD)):
        before = warm.status()
        done = subprocess.run(command, env=module_store.env() | env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "fetch_data: done" in done.stderr  # the step's own lines reach the command's streams
        match = re.search(r"in run with ID '([0-9a-f]+)'", done.stderr)
        assert match, done.stderr[-3000:]
        runs[how] = mlflow.get_run(match.group(1))
        assert runs[how].info.status == "FINISHED"
        wrong = subprocess.run([executable, "no-such-command"], env=os.environ | env, capture_output=True, text=True)
        assert wrong.returncode == 2 and "Usage: mlflow " in wrong.stderr, wrong.stderr
        after = warm.status()
        assert before is not None and after is not None
        # the command and its step, then the wrong command; nothing with the server off
        assert after["launched"] - before["launched"] == (3 if how == "warm" else 0)
    assert runs["warm"].data.tags.get(names.TAG_FORKED_FROM)
    assert names.TAG_FORKED_FROM not in runs["cold"].data.tags
    assert runs["warm"].data.params == runs["cold"].data.params
