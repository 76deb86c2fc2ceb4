"""``mlflow`` commands as the tests run them: MLflow's own click command, in a process of its own,
forked from a server that has already imported it.

The ``mlflow`` executable spends about 3.5 s of every run importing its CLI and tearing its
interpreter down, more than most steps' work; the tests start it about a hundred times. Here each
command is still a new process with its own environment, working directory, output and exit
status, running what the executable runs (``mlflow.cli.cli``, its exit handlers included), and
whatever it starts (the entry point's process, MLflow's local backend) is what a user's command
starts. The executable itself stays under test where the path to it matters: ``make run`` (the
cold pipeline) and the tests that start ``mlflow run`` with ``subprocess.Popen``.

One server per test process (pytest-xdist worker), started on first use and ended with it.
:func:`step` forks a step's module as ``main`` does, from the steps' own servers.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from multiprocessing.process import BaseProcess
from pathlib import Path

_PRELOAD = ["mlflow.cli"]
_context = multiprocessing.get_context("forkserver")


def run(argv: list[str], env: Mapping[str, str], cwd: Path | str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``mlflow <argv>`` in ``cwd`` with exactly ``env``, as ``subprocess.run(..., capture_output=True,
    text=True, timeout=timeout)`` runs the executable: its exit status and what it (and every process
    it starts) wrote. Past ``timeout`` the command is killed and ``subprocess.TimeoutExpired`` raised."""
    return _completed(["mlflow", *argv], timeout, lambda out, err: start(argv, env, cwd, out, err, new_session=False))


def start(
    argv: list[str],
    env: Mapping[str, str],
    cwd: Path | str,
    out: Path | str = os.devnull,
    err: Path | str = os.devnull,
    new_session: bool = True,
) -> BaseProcess:
    """``mlflow <argv>`` started in the background (a server: ``models serve``), its output to
    ``out`` and ``err``, by default in a session of its own as ``start_new_session=True`` puts one:
    ``os.killpg(process.pid, ...)`` ends it and whatever it started. ``exitcode`` and ``join``
    stand for ``poll`` and ``wait``."""
    _context.set_forkserver_preload(_PRELOAD)
    process = _context.Process(target=_command, args=(argv, dict(env), str(cwd), str(out), str(err), new_session))
    process.start()
    return process


def _completed(
    command: list[str], timeout: float, begin: Callable[[Path, Path], BaseProcess]
) -> subprocess.CompletedProcess[str]:
    """Start a process with ``begin(stdout_file, stderr_file)`` and wait for it, as ``subprocess.run``
    waits for ``command``: past ``timeout`` it is killed and ``subprocess.TimeoutExpired`` raised."""
    with tempfile.TemporaryDirectory(prefix="warm-") as folder:
        out, err = Path(folder, "stdout"), Path(folder, "stderr")
        process = begin(out, err)
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(command, timeout, _read(out), _read(err))
        return subprocess.CompletedProcess(command, process.exitcode, _read(out), _read(err))


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def step(
    preload: tuple[str, ...],
    module: str,
    args: list[str],
    env: Mapping[str, str],
    cwd: Path | str,
    timeout: float,
    patch: str = "",
) -> subprocess.CompletedProcess[str]:
    """``python -m <module> <args>`` forked as ``main`` forks a step (:mod:`psystock.forking`: from
    this process's server that preloads ``preload`` too), ``patch`` run first in it; its exit
    status and output, as :func:`run` gives them."""
    from psystock import forking

    def begin(out: Path, err: Path) -> BaseProcess:
        process = forking.StepProcess(
            preload, target=_step, args=(str(cwd), module, args, dict(env), str(out), str(err), patch)
        )
        process.start()
        return process

    return _completed([module, *args], timeout, begin)


def _step(cwd: str, module: str, args: list[str], env: dict[str, str], out: str, err: str, patch: str) -> None:
    from psystock import forking

    _redirect(out, err)
    os.environ.clear()
    os.environ.update(env)  # the patch runs where the step will, as in a new interpreter
    if patch:
        exec(compile(patch, "<patch>", "exec"), {})  # the test's own stand-in code, first
    forking.run_module(cwd, module, args, env)


def _redirect(out: str, err: str) -> None:
    """Standard output and error onto files, for this process and every process it starts."""
    for fd, path in ((1, out), (2, err)):
        opened = os.open(path, os.O_WRONLY | os.O_CREAT | (0 if path == os.devnull else os.O_TRUNC), 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115 -- the process's own stream
    sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115


def _command(argv: list[str], env: dict[str, str], cwd: str, out: str, err: str, new_session: bool) -> None:
    """The forked process: the executable's ``mlflow`` command with its standard streams on files
    (inherited by the processes it starts), ended as an interpreter would end, exit handlers run."""
    if new_session:
        os.setsid()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    _redirect(out, err)
    sys.argv = ["mlflow", *argv]
    from mlflow.cli import cli

    code = 1
    try:
        cli.main(args=argv, prog_name="mlflow")
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 0 if done.code is None else 1
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
    finally:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
