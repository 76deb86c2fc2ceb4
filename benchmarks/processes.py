"""Where a command's CPU goes: the core-seconds of every process it starts, by kind.

Usage: python -m benchmarks.processes [--every SECONDS] -- COMMAND [ARG ...]

Runs COMMAND and reads ``/proc`` every ``--every`` seconds (0.1) for the processes descended
from it, keeping each one's last user + system time, its parent and its command line. Then it
prints the core-seconds by kind of process, largest first, beside the machine's own busy and
idle core-seconds over the same wall time (``/proc/stat``). A process that lives less than one
reading is missed, and one's last reading may come up to ``--every`` before its end, so the
kinds' total falls a little short of what the machine spent.

The kinds are psystock's: a ``python -m steps.<name>`` interpreter (MLflow's local backend runs
an entry point so), ``main``'s interpreter, a server of :mod:`psystock.forking` and what it forks
(the steps ``main`` starts warm), the tests' warm ``mlflow`` commands
(:mod:`tests.helpers.warm_cli`), pytest and its xdist workers (the tests that run in-process),
``mlflow server``; anything else by its executable's name. For example, what ``make test``
spends::

    python -m benchmarks.processes -- python -m pytest -m "not slow" -n 2 --dist loadfile -p no:randomly -q
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

TICKS = os.sysconf("SC_CLK_TCK")


# A process: its pid and its start (clock ticks after boot), as a pid the kernel reuses is another.
Key = tuple[int, int]


@dataclass(frozen=True)
class Process:
    key: Key
    parent: Key  # as it was when the process was first read: one whose parent ends goes to init
    command: str  # its command line, arguments joined by spaces
    name: str  # the kernel's name for it (the executable's, first 15 characters)
    cpu: float  # user + system seconds, at the last reading


def read(pid: int) -> tuple[Process, int] | None:
    """``pid`` as ``/proc`` has it now, and its parent's pid (its :attr:`Process.parent` is left for
    the caller, who knows when that pid started), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            line = stat.read()
        with open(f"/proc/{pid}/cmdline") as cmdline:
            command = cmdline.read().replace("\0", " ").strip()
    except OSError:
        return None
    name, fields = line[line.find("(") + 1 : line.rfind(")")], line[line.rfind(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    return Process((pid, int(fields[19])), (0, 0), command, name, cpu), int(fields[1])


def descendants(processes: Mapping[Key, Process], root: Key) -> list[Process]:
    """``root`` and every process below it, by parent."""
    children: dict[Key, list[Process]] = {}
    for process in processes.values():
        children.setdefault(process.parent, []).append(process)
    found, waiting = [], [processes[root]] if root in processes else []
    while waiting:
        process = waiting.pop()
        found.append(process)
        waiting.extend(children.get(process.key, []))
    return found


def _own_kind(process: Process) -> str | None:
    command = process.command
    if step := re.match(r"\S*python[\d.]*( -\w+)* -m (steps\.\w+)", command):
        return "main interpreter" if step.group(2) == "steps.main" else f"{step.group(2)} interpreter"
    if "forkserver import main" in command:
        return "warm mlflow command" if "'mlflow.cli'" in command else "psystock server"
    if re.search(r"\bpytest\b", command) or "exec(eval(sys.stdin" in command:
        return "pytest (tests run in-process)"
    if "mlflow.pyfunc.scoring_server" in command:
        return "mlflow models serve (scoring server)"
    if re.search(r"mlflow server|mlflow\.server|gunicorn|uvicorn", command):
        return "mlflow server"
    if "resource_tracker import main" in command:
        return "multiprocessing's resource tracker"
    if python := re.match(r"\S*python[\d.]*( -\w+)* (-m \S+|-c)", command):
        return f"python {python.group(2)}"  # another module run as a program, or a snippet
    return None


def kind(process: Process, processes: Mapping[Key, Process]) -> str:
    """What ``process`` is: a forked copy of its parent (the same command line) is "forked from"
    it, a worker multiprocessing spawned for it is its parent's kind, one started by a known
    process is named by what it runs, anything else by its name."""
    parent = processes.get(process.parent)
    if parent is not None and "multiprocessing.spawn import spawn_main" in process.command:
        return kind(parent, processes)  # a worker spawned by its parent (uvicorn's) is part of it
    own = _own_kind(process)
    if own and parent is not None and parent.command == process.command:
        return f"forked from a {own}" if own != "psystock server" else "forked from a psystock server (steps, servers)"
    return own or process.name


def by_kind(processes: Mapping[Key, Process], root: Key) -> tuple[dict[str, float], Counter[str]]:
    """The core-seconds of ``root``'s process tree and its number of processes, by :func:`kind`."""
    seconds: dict[str, float] = {}
    counts: Counter[str] = Counter()
    for process in descendants(processes, root):
        what = kind(process, processes)
        seconds[what] = seconds.get(what, 0.0) + process.cpu
        counts[what] += 1
    return seconds, counts


def machine_seconds() -> tuple[float, float]:
    """The machine's busy (user, nice, system) and idle core-seconds since boot."""
    with open("/proc/stat") as stat:
        fields = [int(field) for field in stat.readline().split()[1:5]]
    return sum(fields[:3]) / TICKS, fields[3] / TICKS


def watch(command: list[str], every: float) -> tuple[dict[Key, Process], Key, int]:
    """Run ``command`` and read every process every ``every`` seconds until it exits: each one's
    last reading, the command's process and its exit status."""
    seen: dict[Key, Process] = {}
    newest: dict[int, Key] = {}  # each pid's newest process
    started = subprocess.Popen(command)
    while started.poll() is None:
        readings = [found for pid in os.listdir("/proc") if pid.isdigit() and (found := read(int(pid)))]
        newest.update((process.key[0], process.key) for process, _ in readings)
        for process, parent in readings:
            if process.key in seen:  # its first parent, and its command line while it had one
                first = seen[process.key]
                process = replace(process, parent=first.parent, command=process.command or first.command)
            else:
                process = replace(process, parent=newest.get(parent, (parent, 0)))
            seen[process.key] = process
        time.sleep(every)
    return seen, newest.get(started.pid, (started.pid, 0)), started.returncode


def table(seconds: Mapping[str, float], counts: Mapping[str, int]) -> Iterable[str]:
    yield f"{'core-s':>8}  {'processes':>9}  kind"
    for what, spent in sorted(seconds.items(), key=lambda item: -item[1]):
        yield f"{spent:8.1f}  {counts[what]:9d}  {what}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=float, default=0.1, help="seconds between readings of /proc")
    parser.add_argument("--show", default="", help="also list the processes of this kind, with their command lines")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to measure after --")
    busy, idle, began = *machine_seconds(), time.perf_counter()
    seen, root, status = watch(command, args.every)
    wall = time.perf_counter() - began
    busy, idle = machine_seconds()[0] - busy, machine_seconds()[1] - idle
    seconds, counts = by_kind(seen, root)
    print("\n".join(table(seconds, counts)), file=sys.stderr)
    for process in descendants(seen, root) if args.show else []:
        if kind(process, seen) == args.show:
            print(f"{process.cpu:8.1f}  {process.key[0]:9d}  {process.command or '(no command line)'}", file=sys.stderr)
    print(
        f"{sum(seconds.values()):8.1f}  in all; the machine: {busy:.1f} busy, {idle:.1f} idle core-seconds "
        f"in {wall:.1f} s; the command exited with {status}",
        file=sys.stderr,
    )
    sys.exit(status)


if __name__ == "__main__":
    main()
