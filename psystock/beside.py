"""Work done in a forked child while this process does its own: the other core of a step.

A child forked from this process starts with everything it has loaded, and its result comes back
pickled through a pipe. It must be forked before a framework here starts threads of its own
(TensorFlow starts its pools at its first op): only the forking thread lives on in the child.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from psystock import PsystockError

T = TypeVar("T")

PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


@contextlib.contextmanager
def beside(work: Callable[[], T]) -> Iterator[Callable[[], T]]:
    """Start ``work()`` in a child forked now; yields a function that waits for its result and
    returns it, or raises its error. A child that dies before it answers is a
    :class:`PsystockError` naming how it ended; one still running when the block is left (the
    caller failed first) is killed, and no child outlives the block."""
    for stream in (sys.stdout, sys.stderr):  # or the child would write what is buffered here again
        stream.flush()
    reading, writing = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(reading)
        _die_with(parent)
        _answer(work, writing)
    os.close(writing)
    ended = False

    def result() -> T:
        nonlocal ended
        with os.fdopen(reading, "rb") as answer:
            data = answer.read()
        _, status = os.waitpid(pid, 0)
        ended = True
        if not data:
            raise PsystockError(f"the process beside this one (pid {pid}) {_how_it_ended(status)} before it answered")
        succeeded, value = pickle.loads(data)
        if not succeeded:
            raise value
        return value  # type: ignore[no-any-return]

    try:
        yield result
    finally:
        if not ended:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            with contextlib.suppress(OSError):
                os.close(reading)


def _answer(work: Callable[[], Any], writing: int) -> None:
    """The child: run ``work``, send back its result or its error, and leave at once, running no
    exit handler of the parent's (MLflow's would end the parent's run)."""
    try:
        try:
            outcome: tuple[bool, Any] = (True, work())
        except BaseException as exc:  # every error goes back to the parent
            outcome = (False, exc)
        try:
            data = pickle.dumps(outcome)
        except Exception:  # an error that does not pickle goes back as its first line
            data = pickle.dumps((False, PsystockError((str(outcome[1]) or repr(outcome[1])).splitlines()[0])))
        with os.fdopen(writing, "wb") as out:
            out.write(data)
    finally:
        os._exit(0)


def _die_with(parent: int) -> None:
    """On Linux, have the kernel kill this child when its parent dies, ``kill -9`` included, rather
    than leave it working for nobody; a parent already gone ends it now. (The kernel watches the
    forking thread, which waits in :func:`beside`'s block for as long as the child works.)"""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _how_it_ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
