"""benchmarks.processes: a command's CPU by kind of process."""

from __future__ import annotations

import os
import sys

from benchmarks.processes import Process, by_kind, descendants, kind, read, watch

SERVER = "/venv/bin/python -B -c from multiprocessing.forkserver import main; main(3, 5, ['mlflow', 'pandas'])"
WARM_CLI = "/venv/bin/python -B -c from multiprocessing.forkserver import main; main(3, 5, ['mlflow.cli'])"


def table(*rows: tuple[int, int, str, str, float]) -> dict[tuple[int, int], Process]:
    """Processes that each started at tick 100 + pid."""
    return {
        (pid, 100 + pid): Process((pid, 100 + pid), (parent, 100 + parent), command, name, cpu)
        for pid, parent, command, name, cpu in rows
    }


def key(pid: int) -> tuple[int, int]:
    return (pid, 100 + pid)


# A test worker's warm `mlflow run -e main` and `-e predict`, and a process outside the tree.
PROCESSES = table(
    (10, 1, "python -m pytest -n 2", "python", 3.0),
    (11, 10, "python -c import sys;exec(eval(sys.stdin.readline()))", "python", 40.0),
    (12, 11, WARM_CLI, "python", 2.0),
    (13, 12, WARM_CLI, "python", 1.5),  # mlflow run -e main, forked warm
    (14, 13, "/bin/sh -c python -m steps.main --ticker X", "sh", 0.0),
    (15, 14, "python -m steps.main --ticker X", "python", 4.0),
    (16, 15, SERVER, "python", 5.0),
    (17, 16, SERVER, "python", 2.5),  # the Keras server, forked from the plain one
    (18, 17, SERVER, "python", 3.0),  # a step forked from it
    (19, 16, SERVER, "python", 1.0),  # a step forked from the plain one
    (20, 16, "git cat-file --batch-check", "git", 0.25),
    (21, 12, WARM_CLI, "python", 1.0),  # mlflow run -e predict, forked warm
    (22, 21, "python -m steps.predict --ticker X", "python", 5.0),
    (23, 11, "/venv/bin/python -m pip install --quiet ./examples/psystock-knn", "python", 4.0),
    (24, 11, "/venv/bin/python -c import os; print(os.getpid())", "python", 0.5),
    (25, 16, "/venv/bin/python -c from multiprocessing.resource_tracker import main;main(7)", "python", 0.1),
    (26, 11, "/usr/bin/env", "env", 0.0),
    (27, 11, "/venv/bin/python -m mlflow server --port 5000 --workers 2", "python", 3.0),
    (28, 27, "/venv/bin/python -m uvicorn --workers 2 mlflow.server.fastapi_app:app", "python", 0.25),
    (29, 28, "/venv/bin/python -B -c from multiprocessing.spawn import spawn_main; spawn_main(7)", "python", 2.0),
    (31, 12, "/bin/sh -c uvicorn --host 127.0.0.1 mlflow.pyfunc.scoring_server.app:app", "sh", 0.0),
    (32, 31, "/venv/bin/python /venv/bin/uvicorn --host 127.0.0.1 mlflow.pyfunc.scoring_server.app:app", "python", 2.5),
    (30, 1, "python -m steps.main", "python", 99.0),
)


def test_a_tree_is_its_root_and_everything_below_it_and_nothing_beside_it():
    assert sorted(process.key[0] for process in descendants(PROCESSES, key(13))) == [13, 14, 15, 16, 17, 18, 19, 20, 25]
    assert sorted(process.key[0] for process in descendants(PROCESSES, key(10))) == [*range(10, 30), 31, 32]
    assert descendants(PROCESSES, key(99)) == []


def test_a_reused_pid_is_another_process():
    reused = {**PROCESSES, (16, 500): Process((16, 500), (1, 0), "python -m steps.predict", "python", 7.0)}
    assert (16, 500) not in {process.key for process in descendants(reused, key(10))}
    assert key(18) in {process.key for process in descendants(reused, key(10))}


def test_each_process_is_named_by_what_it_runs_and_a_fork_by_what_it_was_forked_from():
    kinds = {pid: kind(process, PROCESSES) for (pid, _), process in PROCESSES.items()}
    assert kinds[11] == "pytest (tests run in-process)"
    assert kinds[12] == "warm mlflow command"
    assert kinds[13] == kinds[21] == "forked from a warm mlflow command"
    assert kinds[14] == "sh"
    assert kinds[15] == kinds[30] == "main interpreter"
    assert kinds[16] == "psystock server"
    assert kinds[17] == kinds[18] == kinds[19] == "forked from a psystock server (steps, servers)"
    assert kinds[20] == "git"
    assert kinds[22] == "steps.predict interpreter"
    assert kinds[23] == "python -m pip"
    assert kinds[24] == "python -c"
    assert kinds[25] == "multiprocessing's resource tracker"
    assert kinds[26] == "env"
    assert kinds[27] == kinds[28] == kinds[29] == "mlflow server"  # 29: a uvicorn worker, spawned
    assert kinds[31] == kinds[32] == "mlflow models serve (scoring server)"


def test_a_trees_seconds_add_up_by_kind_and_leave_out_other_trees():
    seconds, counts = by_kind(PROCESSES, key(10))
    assert seconds["forked from a psystock server (steps, servers)"] == 6.5
    assert counts["forked from a psystock server (steps, servers)"] == 3
    assert seconds["main interpreter"] == 4.0  # not the 99 s of the main outside the tree
    assert seconds["mlflow server"] == 5.25
    assert sum(seconds.values()) == 80.6
    assert sum(counts.values()) == 22


def test_a_process_is_read_from_proc():
    found = read(os.getpid())
    assert found is not None
    me, parent = found
    assert me.key[0] == os.getpid() and me.key[1] > 0
    assert parent == os.getppid()
    assert "python" in me.command or "python" in me.name
    assert me.cpu > 0
    assert read(2**22 + 1) is None  # above the kernel's largest pid


def test_a_watched_commands_children_are_found_with_their_cpu():
    busy = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {busy!r}]); sys.exit(3)"
    seen, root, status = watch([sys.executable, "-c", child], every=0.02)
    assert status == 3
    below = [process for process in descendants(seen, root) if process.key != root]
    assert len(below) == 1
    assert below[0].command.startswith(sys.executable)
    assert 0.2 <= below[0].cpu <= 1.0


def test_a_process_whose_parent_ended_stays_in_the_tree():
    # The middle process starts a busy grandchild and ends before it: the grandchild goes to init.
    busy = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass"
    middle = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {busy!r}]); time.sleep(0.2)"
    outer = f"import subprocess, sys, time; subprocess.run([sys.executable, '-c', {middle!r}]); time.sleep(1)"
    seen, root, status = watch([sys.executable, "-c", outer], every=0.02)
    assert status == 0
    below = [process for process in descendants(seen, root) if process.key != root]
    assert len(below) == 2
    assert max(process.cpu for process in below) >= 0.5  # its reading after it went to init too
