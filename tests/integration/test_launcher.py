"""Steps forked warm (main's ``launcher=forkserver``): the same runs as from a new interpreter, each
its own process, failures still FAILED with their line, and nothing of one step left for the next."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from psystock import names
from psystock.handover import NAME as WARM_NAME
from psystock.handover import OFF
from psystock.mlflow_io import forkserver
from psystock.mlflow_io.launch import Launch, Launched, create_run, launch
from tests.helpers.runs import PROJECT, finished, mlflow_run

pytestmark = pytest.mark.integration

BACKENDS = {names.FORKSERVER: names.FORKSERVER_BACKEND, names.SUBPROCESS: "local"}


@pytest.fixture(scope="module")
def training_data(module_store, btc_csv):
    fetched = finished(mlflow_run(module_store, "fetch_data", {"source": btc_csv, "start": "2019-01-01"}))
    prices = names.run_uri(fetched.info.run_id, names.PRICES_DIR)
    features = finished(mlflow_run(module_store, "build_features", {"prices": prices}))
    return names.run_uri(features.info.run_id, names.FEATURES_DIR)


def step(store, entry_point: str, parameters: dict[str, str], launcher: str, project=PROJECT) -> Launch:
    return Launch(
        uri=str(project),
        entry_point=entry_point,
        parameters=parameters,
        experiment_id=store.experiment_id,
        tracking_uri=store.uri,
        run_name=f"{entry_point} ({launcher})",
        backend=BACKENDS[launcher],
    )


# Keras: forked from the server that has imported TensorFlow as well.
@pytest.mark.parametrize(("entry_point", "changes"), [("train_xgboost", {}), ("train_keras", {"epochs": "3"})])
def test_both_launchers_give_the_same_run_to_the_last_digit(
    module_store, training_data, entry_point, changes, monkeypatch
):
    monkeypatch.setenv(WARM_NAME, OFF)  # MLflow's local backend: a new interpreter, as main's subprocess launcher
    runs = {}
    for launcher in BACKENDS:
        done = launch(step(module_store, entry_point, {"training_data": training_data, **changes}, launcher))
        assert done.ok, done.error
        runs[launcher] = mlflow.get_run(done.run_id)
    forked, anew = runs[names.FORKSERVER], runs[names.SUBPROCESS]
    assert forked.data.metrics.keys() == anew.data.metrics.keys() and "cv_mcc_mean" in forked.data.metrics
    assert {k: v for k, v in forked.data.metrics.items() if "seconds" not in k} == {
        k: v for k, v in anew.data.metrics.items() if "seconds" not in k
    }
    assert forked.data.params == anew.data.params
    # The forked step spent its CPU on its work; the new interpreter imported its libraries first.
    assert 0 < forked.data.metrics[names.CPU_SECONDS] < anew.data.metrics[names.CPU_SECONDS]
    assert forked.data.tags["mlflow.project.backend"] == names.FORKSERVER_BACKEND
    assert anew.data.tags["mlflow.project.backend"] == "local"
    assert forked.data.tags[names.TAG_FORKED_FROM] and names.TAG_FORKED_FROM not in anew.data.tags
    # Each ran in a process of its own, not in the test's.
    pids = {int(r.data.tags[names.TAG_PROCESS].rpartition(":")[2]) for r in runs.values()}
    assert len(pids) == 2 and os.getpid() not in pids


def test_a_failing_forked_step_is_failed_with_its_line(module_store, training_data):
    done = launch(step(module_store, "train_logreg", {"training_data": training_data, "C": "-1"}, names.FORKSERVER))
    assert not done.ok
    assert done.error.startswith("train_logreg: C must be > 0"), done.error
    assert mlflow.get_run(done.run_id).info.status == "FAILED"


def test_a_killed_forked_step_is_failed(module_store, training_data):
    spec = step(module_store, "train_keras", {"training_data": training_data, "epochs": "50"}, names.FORKSERVER)
    run_id = create_run(spec)
    result: list[Launched] = []
    thread = threading.Thread(target=lambda: result.append(launch(spec, run_id)))
    thread.start()
    deadline, process = time.time() + 120, ""
    while not process and time.time() < deadline:
        time.sleep(0.2)
        process = mlflow.get_run(run_id).data.tags.get(names.TAG_PROCESS, "")
    assert process, "the step never said which process it is"
    os.kill(int(process.rpartition(":")[2]), signal.SIGKILL)
    thread.join(timeout=120)
    (done,) = result
    assert not done.ok and mlflow.get_run(done.run_id).info.status == "FAILED"
    assert done.error == f"train_keras: its process {process.rpartition(':')[2]} was killed by SIGKILL"


def _ends_once_stopped(ready: Any, killed: bool) -> None:
    # Killed: what TensorFlow, stopped in the middle of its work, can do (abort). Not: a step
    # stopped before it began its run, which exits as the stop asks without a run to end.
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGKILL) if killed else os._exit(143))
    ready.set()
    time.sleep(60)


@pytest.mark.parametrize(
    ("killed", "ending"),
    [(True, ", then its process {pid} was killed by SIGKILL"), (False, "")],
    ids=["dies", "exits-before-its-run"],
)
def test_a_forked_step_that_ends_without_its_run_once_its_driver_stopped_it_says_it_was_stopped(store, killed, ending):
    """A step whose process ends once its driver passed a stop on, before the step could end its
    run, is FAILED saying what stopped it (then how its process ended, if not as the stop asks);
    so is a child run it had begun."""
    client = mlflow.MlflowClient()
    run_id = client.create_run(store.experiment_id).info.run_id
    child = client.create_run(store.experiment_id, tags={MLFLOW_PARENT_RUN_ID: run_id}).info.run_id
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    process = context.Process(target=_ends_once_stopped, args=(ready, killed))
    process.start()
    assert ready.wait(30)
    step = forkserver.ForkedRun(run_id, process, "train_keras", store.uri)
    forkserver.signal_steps(signal.SIGTERM)
    assert not step.wait()
    said = "train_keras: stopped by SIGTERM" + ending.format(pid=process.pid)
    assert mlflow.get_run(run_id).data.tags[names.TAG_ERROR] == said
    assert mlflow.get_run(child).info.status == "FAILED" and mlflow.get_run(child).data.tags[names.TAG_ERROR] == said


STOPPED_STEP = textwrap.dedent(
    """
    import atexit, os, signal, threading, time
    from psystock.mlflow_io.lifecycle import run_step
    from steps import fetch_data

    def work(_args):
        threading.Thread(target=threading.Event().wait, name="never-ends").start()  # not a daemon
        atexit.register(print, "exit functions ran", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)

    if __name__ == "__main__":
        run_step(fetch_data.Args, work)
    """
)


@pytest.mark.parametrize("launcher", [names.FORKSERVER, names.SUBPROCESS])
def test_a_stopped_step_leaves_at_once_whatever_its_work_left_running(store, tmp_path, launcher):
    """A stop ends a step's run, and the step says so; then the process ends, as the signal would
    have ended it. It waited, as a process ending normally does, on every thread the stopped work
    had started, and one that never ended kept it alive, and the pipeline that waited for it. A
    new interpreter still runs its exit functions (a driver's end its servers); a forked process
    never runs them."""
    (tmp_path / "stopped_step.py").write_text(STOPPED_STEP)
    if launcher == names.FORKSERVER:
        said = drive(
            tmp_path,
            f"""
            import os
            args = ({str(tmp_path)!r}, "stopped_step", ["--ticker", "SPY"], dict(os.environ))
            step = forking.StepProcess((), target=forking.run_module, args=args)
            step.start()
            step.join(timeout=30)
            if step.exitcode is None:
                step.kill()
            print("exit", step.exitcode, flush=True)
            """,
        )
    else:
        step = subprocess.Popen(
            [sys.executable, "-m", "stopped_step", "--ticker", "SPY"],
            cwd=tmp_path,
            env=dict(os.environ, PYTHONPATH=str(PROJECT)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            output, _ = step.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            step.kill()
            output, _ = step.communicate()
        said = [*output.split(), "exit", str(step.poll())]
    assert said[-2:] == ["exit", str(128 + signal.SIGTERM)], " ".join(said)
    assert ("ran" in said) == (launcher == names.SUBPROCESS), " ".join(said)
    (run,) = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.`psystock.step` = 'fetch_data'", output_format="list"
    )
    assert run.info.status == "FAILED" and run.data.tags[names.TAG_ERROR] == "fetch_data: stopped by SIGTERM"


PROBE = textwrap.dedent(
    """
    import json, logging, os, sys

    sql_store = "mlflow.store.tracking.sqlalchemy_store" in sys.modules  # before this step asks for it
    protocol = "psystock.protocol" in sys.modules
    skops = "skops.io" in sys.modules
    import mlflow

    seen = {
        "sql_store": sql_store,
        "protocol": protocol,
        "variable": os.environ.get("PROBE_LEFT_BEHIND"),
        "cwd": os.getcwd(),
        "active_run": mlflow.active_run() is not None,
        "handlers": len(logging.getLogger().handlers),
        "run": os.environ["MLFLOW_RUN_ID"],
        "tensorflow": "tensorflow" in sys.modules,
        "skops": skops,
    }
    with open(sys.argv[1], "a") as out:
        out.write(json.dumps(seen) + "\\n")
    # What a careless step leaves behind: none of it may reach the next one.
    os.environ["PROBE_LEFT_BEHIND"] = "yes"
    os.chdir("/")
    logging.getLogger().addHandler(logging.StreamHandler())
    mlflow.start_run()  # never ended: the process's exit ends it
    """
)


def probe(store, tmp_path, runs: list[dict[str, str]]) -> list[dict[str, object]]:
    """What a probe step saw in each forked run, given ``runs``' parameters besides ``out``."""
    project = tmp_path / "probe-project"
    project.mkdir()
    (project / "MLproject").write_text(
        "name: probe\nentry_points:\n  probe:\n    parameters:\n      out: {type: string}\n"
        "      family: {type: string, default: ''}\n    command: python -m probe {out}\n"
    )
    (project / "probe.py").write_text(PROBE)
    out = tmp_path / "seen.jsonl"
    for parameters in runs:
        done = launch(step(store, "probe", {"out": str(out), **parameters}, names.FORKSERVER, project))
        assert done.ok, done.error
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_nothing_of_one_forked_step_reaches_the_next(module_store, tmp_path):
    first, second = probe(module_store, tmp_path, [{}, {}])
    assert first["run"] != second["run"]
    for seen in (first, second):
        assert seen["variable"] is None and seen["cwd"] == str(tmp_path / "probe-project")
        assert not seen["active_run"] and seen["handlers"] == 0
        assert not seen["tensorflow"]  # a step that trains no Keras carries no TensorFlow
        assert seen["sql_store"]  # MLflow's SQL store, imported by the server, not by each step
        assert seen["protocol"]  # and the protocol, with its statistics libraries
        assert seen["skops"]  # and the format mlflow.sklearn saves models in


def test_a_keras_step_forks_from_a_server_that_has_imported_tensorflow(module_store, tmp_path):
    keras, logreg, keras_again = probe(module_store, tmp_path, [{"family": f} for f in ("keras", "logreg", "keras")])
    assert keras["tensorflow"] and keras_again["tensorflow"]
    assert not logreg["tensorflow"]
    # Forked from the plain server beside the steps' one, not from it: no skops to import first.
    assert not keras["skops"] and logreg["skops"]
    assert keras["run"] != keras_again["run"]


def test_a_launch_waits_for_its_own_server_only(tmp_path, monkeypatch):
    """A Keras step launched while its server still imports TensorFlow must not hold up a step
    launched beside it from the plain server."""
    from psystock import forking

    (tmp_path / "slow_import_probe.py").write_text("import time\ntime.sleep(4)\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the new server's sys.path is this process's
    warm = forking.StepProcess((), target=time.sleep, args=(0,))
    warm.start()
    warm.join()
    slow = forking.StepProcess(("slow_import_probe",), target=time.sleep, args=(0,))
    started = time.monotonic()
    launching = threading.Thread(target=slow.start)
    launching.start()
    time.sleep(0.5)  # the slow server is importing; its launch waits on it
    quick = forking.StepProcess((), target=time.sleep, args=(0,))
    quick.start()
    quick.join()
    quick_done = time.monotonic() - started
    launching.join()
    slow.join()
    slow_done = time.monotonic() - started
    assert quick.exitcode == 0 and slow.exitcode == 0
    assert quick_done < 3 < slow_done, (quick_done, slow_done)


def test_a_step_waited_for_while_the_next_starts_keeps_its_exit_status():
    """A step's thread waits for it while the driver's other threads start steps, and starting a
    process first polls every child (as ``active_children`` does): the status the server sends
    must be read once, and a step that finished must not be taken for one that exited with 255."""
    import multiprocessing

    from psystock import forking

    def poll_children(waited: threading.Event) -> None:
        while not waited.is_set():
            multiprocessing.active_children()

    statuses = []
    for _ in range(20):
        finished_step = forking.StepProcess((), target=time.sleep, args=(0.05,))
        finished_step.start()
        waited = threading.Event()
        poller = threading.Thread(target=poll_children, args=(waited,))
        poller.start()
        finished_step.join()
        waited.set()
        poller.join()
        statuses.append(finished_step.exitcode)
    assert statuses == [0] * 20


def drive(tmp_path: Path, body: str) -> list[str]:
    """Run ``body`` as a driver process of its own, with ``tmp_path`` importable; what it printed."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(PROJECT)]))
    out = tmp_path / "out"  # not a pipe: a server left behind would hold it open
    with out.open("w") as stdout:
        code = f"from psystock import forking\n{textwrap.dedent(body)}"
        done = subprocess.run([sys.executable, "-c", code], env=env, stdout=stdout, stderr=stdout, timeout=60)
    assert done.returncode == 0, out.read_text()
    return out.read_text().split()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    os.kill(pid, signal.SIGKILL)
    return False


def test_a_driver_ends_its_servers_as_it_exits_even_one_still_importing(tmp_path):
    """A driver that ends within its servers' imports (all cached, or parameters refused) must not
    leave them importing, on a core the next run needs."""
    (tmp_path / "slow_import_probe.py").write_text("import time\ntime.sleep(120)\n")
    pids = drive(
        tmp_path,
        """
        slow = forking.server(("slow_import_probe",))
        slow.ensure_running()
        print(slow._forkserver_pid, forking.server()._forkserver_pid, flush=True)
        """,
    )
    assert [pid for pid in map(int, pids) if not gone(pid)] == [], "the driver exited, its servers still run"


def test_a_familys_server_is_forked_from_the_plain_one_and_imports_only_its_own_modules(tmp_path):
    """A family's server (Keras's: TensorFlow) starts from the plain server's imports, not from a
    new interpreter that imports MLflow, pandas and scikit-learn again."""
    seen = tmp_path / "seen"
    (tmp_path / "parent_probe.py").write_text(
        f"import os, sys\nopen({str(seen)!r}, 'w').write(f'{{os.getppid()}} {{\"pandas\" in sys.modules}}')\n"
    )
    (plain,) = drive(
        tmp_path,
        f"""
        import pathlib, time
        forking.server(("parent_probe",)).ensure_running()
        deadline = time.monotonic() + 50
        while not pathlib.Path({str(seen)!r}).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        print(forking.server()._forkserver_pid, flush=True)
        """,
    )
    parent, had_pandas = seen.read_text().split()
    assert parent == plain  # the family's server is the plain server's child
    assert had_pandas == "True"


LENT_PROBE = textwrap.dedent(
    """
    import os, subprocess, sys
    import psystock
    from psystock import forking

    def child(out):
        with open(out, "w") as seen:
            seen.write(f"{os.getppid()} {psystock.forked_from()}")

    if __name__ == "__main__":
        lent = forking.server()  # this process was forked by a driver that lent its servers
        step = forking.StepProcess(
            (), target=forking.run_module, args=(os.getcwd(), "lent_probe_step", sys.argv[1:], dict(os.environ))
        )
        step.start()
        step.join()
        # A new interpreter handed the same variable is no process the driver forked: nothing is lent to it.
        other = subprocess.run(
            [sys.executable, "-c", "from psystock import forking; print(type(forking.server()).__name__)"],
            capture_output=True, text=True, env=dict(os.environ), check=True,
        ).stdout.strip()
        print(lent._forkserver_pid, type(lent).__name__, step.exitcode, other, flush=True)
    """
)


def test_a_process_forked_by_a_driver_forks_its_own_steps_from_the_drivers_servers(tmp_path):
    """A universe's pipelines: each main, forked from the universe's plain server, forks its steps
    from that same server instead of starting servers of its own; a step records its server."""
    (tmp_path / "lent_probe.py").write_text(LENT_PROBE)
    (tmp_path / "lent_probe_step.py").write_text("import sys\nfrom lent_probe import child\nchild(sys.argv[1])\n")
    seen = tmp_path / "seen"
    lent_pid, kind, step_exit, other_kind, plain = drive(
        tmp_path,
        f"""
        import os
        forking.server().ensure_running()
        driver = forking.StepProcess(
            (),
            target=forking.run_module,
            args=({str(tmp_path)!r}, "lent_probe", [{str(seen)!r}], {{**os.environ, **forking.lent_servers()}}),
        )
        driver.start()
        driver.join()
        print(forking.server()._forkserver_pid, flush=True)
        """,
    )
    assert (kind, step_exit, other_kind) == ("_Lent", "0", "_Server")
    assert lent_pid == plain
    parent, server = seen.read_text().split()
    assert parent == plain  # the forked driver's step came from the driver's own server
    assert server == f"{socket.gethostname()}:{plain}"


SCORE_AND_EXIT_AS_A_FORKED_STEP = """
import os, sys
import numpy as np, pandas as pd
from psystock.models import keras_net
rows = np.random.default_rng(0).integers(0, 2, (64, 3))
X, y = pd.DataFrame(rows.astype(float)), pd.Series(rows[:, 0])
keras_net.predict_proba(keras_net.fit(X, y, keras_net.KerasParams(epochs=1), seed=0), X)
sys.stdout.flush()
os._exit(0)  # as multiprocessing ends a forked step: no exit handlers
"""


def test_scoring_a_network_leaves_no_file_behind_in_a_process_ended_without_exit_handlers(tmp_path):
    """Autograph writes the source of each function it converts to a temporary file that only an
    exit handler removes; a forked step ends without running them."""
    env = os.environ | {"TMPDIR": str(tmp_path), "PYTHONPATH": str(PROJECT)}
    done = subprocess.run(
        [sys.executable, "-c", SCORE_AND_EXIT_AS_A_FORKED_STEP], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []
