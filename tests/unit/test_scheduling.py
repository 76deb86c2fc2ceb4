"""The order in which the test workers take files (tests/helpers/scheduling.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from tests.helpers.scheduling import LongestFileFirst, file_costs, merged, read_durations

COLLECTION = [
    "a.py::one",
    "b.py::one",
    "b.py::two",
    "b.py::three",
    "c.py::one",
    "d.py::one",
    "d.py::two",
    "e.py::one",
]
DURATIONS = {
    "a.py::one": 100.0,
    "b.py::one": 10.0,
    "b.py::two": 10.0,
    "b.py::three": 10.0,
    "c.py::one": 50.0,
    "e.py::one": 20.0,
}


class Worker:
    """What the scheduler sees of a pytest-xdist worker: the tests it is sent, by collection index."""

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent: list[str] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent += [COLLECTION[i] for i in indices]

    def shutdown(self) -> None:
        self.shutting_down = True


def scheduled(durations: dict[str, float]) -> tuple[LongestFileFirst, Worker, Worker]:
    config = SimpleNamespace(getvalue=lambda name: ["2*popen"], option=SimpleNamespace(loadscopereorder=True))
    scheduler = LongestFileFirst(config, durations=durations)  # type: ignore[arg-type]
    first, second = Worker("gw0"), Worker("gw1")
    for worker in (first, second):
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, COLLECTION)
    scheduler.schedule()
    return scheduler, first, second


def test_files_cost_the_stored_seconds_of_their_collected_tests():
    assert file_costs(COLLECTION, DURATIONS) == {"a.py": 100.0, "b.py": 30.0, "c.py": 50.0, "d.py": 0.0, "e.py": 20.0}


def test_the_longest_files_go_first_and_a_worker_gets_its_next_one_only_at_its_last_test():
    scheduler, first, second = scheduled(DURATIONS)
    # Each worker starts on one of the two longest files and holds the next longest: its run loop
    # needs the test after a file's only test before it runs it.
    assert first.sent == ["a.py::one", "b.py::one", "b.py::two", "b.py::three"]
    assert second.sent == ["c.py::one", "e.py::one"]
    for test in ("a.py::one", "b.py::one"):
        scheduler.mark_test_complete(first, COLLECTION.index(test))
    assert len(first.sent) == 4  # two of its tests still to run (xdist alone would send d.py now)
    scheduler.mark_test_complete(first, COLLECTION.index("b.py::two"))
    assert first.sent[4:] == ["d.py::one", "d.py::two"]  # at its last test, it takes the last file
    assert second.sent == ["c.py::one", "e.py::one"]


def test_without_stored_durations_the_files_keep_xdists_order():
    _, first, second = scheduled({})
    assert first.sent[0] == "b.py::one" and second.sent[0] == "d.py::one"  # the most tests first


def test_stored_durations_keep_long_tests_and_drop_short_ones(tmp_path):
    stored = {"a.py::one": 100.0, "b.py::one": 10.0}
    measured = {"b.py::one": 0.2, "c.py::one": 51.26}
    assert merged(stored, measured) == {"a.py::one": 100.0, "c.py::one": 51.3}
    path = tmp_path / "durations.json"
    assert read_durations(path) == {}
    path.write_text(json.dumps(stored))
    assert read_durations(path) == stored
