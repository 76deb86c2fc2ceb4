"""Work in a child forked beside this process: its result or its error comes back, and no child
outlives the block that started it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from psystock import PsystockError
from psystock.beside import beside


def test_the_childs_result_comes_back_and_it_saw_this_processs_memory():
    rows = np.arange(1_000_000)  # not sent to the child: it has it from the fork

    def work() -> tuple[int, int]:
        return os.getpid(), int(rows.sum())

    with beside(work) as result:
        here = os.getpid()
        pid, total = result()
    assert pid != here and total == int(rows.sum())


def test_the_childs_error_is_raised_here_as_it_was():
    def work() -> None:
        raise PsystockError("units must be at least 1, got 0")

    with beside(work) as result, pytest.raises(PsystockError, match=r"^units must be at least 1, got 0$"):
        result()


class UnpicklableError(Exception):
    def __reduce__(self):
        raise TypeError("cannot pickle")


def test_an_error_that_cannot_be_pickled_comes_back_as_its_first_line():
    def work() -> None:
        raise UnpicklableError("the network diverged\nat epoch 3")

    with beside(work) as result, pytest.raises(PsystockError, match=r"^the network diverged$"):
        result()


def test_a_child_that_dies_before_it_answers_is_an_error_naming_how():
    def work() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with (
        beside(work) as result,
        pytest.raises(PsystockError, match=r"\(pid \d+\) was killed by SIGKILL before it answered"),
    ):
        result()


def test_a_child_still_working_when_the_block_fails_is_killed_and_reaped(tmp_path: Path):
    started = tmp_path / "pid"

    def work() -> None:
        started.write_text(str(os.getpid()))
        time.sleep(60)

    def fail_beside_it() -> None:
        with beside(work):
            while not started.exists() or not started.read_text():
                time.sleep(0.01)
            raise RuntimeError("the final fit failed")

    with pytest.raises(RuntimeError, match="the final fit failed"):
        fail_beside_it()
    with pytest.raises(ChildProcessError):  # reaped: no longer a child of this process
        os.waitpid(int(started.read_text()), os.WNOHANG)


BESIDE_A_KILLED_PARENT = """
import os, sys, time
from psystock.beside import beside

def work():
    with open(sys.argv[1], "w") as out:
        out.write(str(os.getpid()))
    time.sleep(60)

with beside(work):
    time.sleep(60)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has ended, its reaper not yet come


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc: Linux only")
def test_a_child_dies_with_the_process_that_forked_it(tmp_path: Path):
    """A step killed with kill -9 leaves no child fitting its folds for nobody."""
    import subprocess
    import sys

    from psystock.entry_points import PROJECT_ROOT

    started = tmp_path / "pid"
    parent = subprocess.Popen([sys.executable, "-c", BESIDE_A_KILLED_PARENT, str(started)], cwd=PROJECT_ROOT)
    try:
        deadline = time.monotonic() + 60
        while not (started.exists() and started.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(started.read_text())
        assert alive(child)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
