"""The warm server's pure parts: which command lines it takes, and which requests it refuses."""

from __future__ import annotations

import os
import sys
import time

import pytest

from psystock import handover, names, pipeline, warm


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["python", "-m", "steps.compare", "--metric", "mcc"], ("steps.compare", ["--metric", "mcc"])),
        (["python", "-m", "steps.main"], ("steps.main", [])),
        (["python", "-u", "-m", "steps.main"], None),  # interpreter options: it stays as started
        (["python", "-m", "psystock.warm", "start"], None),
        (["python", "-c", "import steps"], None),
        (["python"], None),
    ],
)
def test_only_a_plain_python_m_steps_command_is_handed_over(monkeypatch, argv, expected):
    monkeypatch.setattr(sys, "orig_argv", argv)
    assert handover.handed_module() == expected


def test_a_command_that_is_not_a_step_returns_at_once_without_looking_for_a_server(monkeypatch):
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "pytest"])
    monkeypatch.setattr(handover, "connect", lambda *_: pytest.fail("looked for a server"))
    handover.hand_over()


@pytest.mark.parametrize("name", [handover.OFF, "nobody"])
def test_a_step_with_no_server_to_take_it_carries_on_here(monkeypatch, name):
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "steps.compare"])
    monkeypatch.setenv(handover.NAME, f"{name}-{os.getpid()}" if name != handover.OFF else name)
    handover.hand_over()  # returns: the step runs in this interpreter


def test_the_default_name_is_the_users_interpreters_and_folders(monkeypatch):
    monkeypatch.delenv(handover.NAME, raising=False)
    default = handover.name()
    assert default.startswith(f"{os.getuid()}-")
    monkeypatch.setattr(sys, "executable", "/another/python")
    assert handover.name() != default
    monkeypatch.setenv(handover.NAME, "mine")
    assert handover.name() == "mine"


def request(**changes):
    return handover._request("steps.compare", []) | changes


def test_a_request_the_server_would_run_otherwise_than_asked_is_refused():
    server = warm.Server("test", 60)
    assert server.refusal(request()) is None
    refused = {
        "executable": server.refusal(request(executable="/another/python")),
        "package": server.refusal(request(package="/a/clone/psystock")),
        "settings": server.refusal(request(env=dict(os.environ, PYTHONPATH="/nowhere"))),
        "path": server.refusal(request(path=[*sys.path, "/nowhere"])),
    }
    assert all(answer is not None for answer in refused.values()), refused
    assert "/a/clone/psystock" in str(refused["package"])
    assert not server.stopping.is_set()


def test_a_server_whose_code_changed_refuses_and_stops(monkeypatch, tmp_path):
    (tmp_path / "module.py").write_text("x = 1\n")
    monkeypatch.setattr(warm, "PACKAGE", str(tmp_path))
    server = warm.Server("test", 60)
    assert server.refusal(request(package=str(tmp_path))) is None
    time.sleep(0.01)
    (tmp_path / "module.py").write_text("x = 2\n")
    answer = server.refusal(request(package=str(tmp_path)))
    assert answer is not None and answer["say"]
    assert f"{tmp_path / 'module.py'} changed since it started" in answer["refused"]
    assert server.stopping.is_set()


def test_a_steps_named_parameters_are_read_from_its_command_line():
    assert warm._named_params(["--family", "keras", "--seed", "3"]) == {"family": "keras", "seed": "3"}


@pytest.mark.parametrize("given", ["soon", "0", "-5"])
def test_a_bad_idle_time_is_one_line(monkeypatch, given):
    monkeypatch.setenv(warm.IDLE, given)
    with pytest.raises(warm.PsystockError, match=f"PSYSTOCK_WARM_IDLE must be .*got '{given}'"):
        warm._idle_seconds()


def test_the_subprocess_launcher_keeps_its_launches_out_of_a_warm_server(monkeypatch):
    monkeypatch.delenv(handover.NAME, raising=False)
    pipeline.keep_launches_cold(names.FORKSERVER)
    assert handover.NAME not in os.environ
    pipeline.keep_launches_cold(names.SUBPROCESS)
    assert os.environ[handover.NAME] == handover.OFF
