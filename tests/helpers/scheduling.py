"""Which test file a pytest-xdist worker takes next: the longest one left, by the durations measured
in ``tests/durations.json``.

``make test`` and ``make test-slow`` give each worker whole files (``--dist loadfile``: the module
fixtures, pipelines among them, are made once). xdist's own order is by the number of tests in a
file, and it hands a worker its next file while two of its tests are still to run. A single test of
two or three minutes (an outage, four pipelines on PostgreSQL) then lands last on a worker that is
still busy while the other idles: about a minute of ``make test-slow`` went that way. Here the
files go longest first, and a worker is given its next file only when it must be: when it starts
the last test it holds (a worker runs a test only once it knows the one after it).

A file's cost is the sum of its collected tests' durations (setup, call and teardown) as last
measured; a test not measured yet counts as nothing, so new files go last. ``--store-durations``
measures them again: it writes every test of the run that took a second or more into the file,
keeping the others' entries.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadFileScheduling
from xdist.workermanage import WorkerController

DURATIONS = Path(__file__).parents[1] / "durations.json"
STORED_FROM = 1.0  # seconds: shorter tests barely move a file's cost, and would bloat the file


def read_durations(path: Path = DURATIONS) -> dict[str, float]:
    """Test node id -> seconds, as last stored (nothing if the file is missing)."""
    return json.loads(path.read_text()) if path.exists() else {}


def file_costs(node_ids: list[str], durations: dict[str, float]) -> dict[str, float]:
    """Each file's cost: the stored seconds of its tests among ``node_ids``."""
    costs: dict[str, float] = defaultdict(float)
    for node_id in node_ids:
        costs[node_id.split("::", 1)[0]] += durations.get(node_id, 0.0)
    return costs


def merged(stored: dict[str, float], measured: dict[str, float]) -> dict[str, float]:
    """``stored`` with the tests of this run measured again: long ones kept, short ones dropped."""
    kept = {node_id: seconds for node_id, seconds in stored.items() if node_id not in measured}
    kept |= {node_id: round(seconds, 1) for node_id, seconds in measured.items() if seconds >= STORED_FROM}
    return dict(sorted(kept.items()))


class LongestFileFirst(LoadFileScheduling):
    """``--dist loadfile``, the longest file left first, and a worker's next file bound as late as
    its worker allows."""

    def __init__(self, config: pytest.Config, log: Producer | None = None, durations: dict[str, float] | None = None):
        super().__init__(config, log)
        self.durations = read_durations() if durations is None else durations
        self.costs: dict[str, float] | None = None

    def _assign_work_unit(self, node: WorkerController) -> None:
        if self.costs is None:  # the collection is known from the first assignment on
            self.costs = file_costs(self.collection or [], self.durations)
        costs = self.costs
        longest = max(self.workqueue, key=lambda scope: costs.get(scope, 0.0))  # the first of equals
        self.workqueue.move_to_end(longest, last=False)
        super()._assign_work_unit(node)

    def _reschedule(self, node: WorkerController) -> None:
        # xdist tops a worker up while it still holds two tests; one is what its run loop needs.
        if self.workqueue and not node.shutting_down and self._pending_of(self.assigned_work[node]) > 1:
            return
        super()._reschedule(node)


class DurationRecorder:
    """Sums each test's setup, call and teardown as the reports reach the controller (or the one
    process of a run without workers); stores them at the session's end."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] += report.duration

    def pytest_sessionfinish(self) -> None:
        DURATIONS.write_text(json.dumps(merged(read_durations(), self.seconds), indent=1) + "\n")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-durations",
        action="store_true",
        help=f"store the durations of this run's tests in {DURATIONS.name}, by which the workers take files",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("store_durations") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(DurationRecorder(), "psystock-durations")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> LongestFileFirst | None:
    return LongestFileFirst(config, log) if config.getvalue("dist") == "loadfile" else None
