import asyncio
import socket
from pathlib import Path

import pytest

from psystock import PsystockError
from psystock.server import (
    UVICORN_OPTIONS,
    ServerSettings,
    auth_config,
    check_address,
    check_backend_store,
    event_loop,
    main,
    masked,
    prepare,
    server_command,
    ui_command,
)
from tests.helpers.services import free_port


def test_defaults_keep_everything_in_the_server_folder_and_on_loopback(tmp_path):
    settings = ServerSettings.from_env({"SERVER_DIR": str(tmp_path)})
    command = server_command(settings, python="py")
    assert command[:4] == ["py", "-m", "mlflow", "server"]
    assert command[command.index("--host") + 1] == "127.0.0.1" and command[command.index("--port") + 1] == "5000"
    assert command[command.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert "--serve-artifacts" in command
    assert command[command.index("--artifacts-destination") + 1] == str(tmp_path / "artifacts")
    assert "--app-name" not in command


def test_a_deployment_points_the_server_at_postgresql_and_an_object_store(tmp_path):
    settings = ServerSettings.from_env(
        {
            "SERVER_DIR": str(tmp_path),
            "HOST": "0.0.0.0",
            "PORT": "8080",
            "BACKEND_STORE_URI": "postgresql://mlflow:pw@db:5432/mlflow",
            "ARTIFACTS_DESTINATION": "s3://bucket/mlflow",
        },
        auth=True,
    )
    command = server_command(settings)
    assert command[command.index("--backend-store-uri") + 1] == "postgresql://mlflow:pw@db:5432/mlflow"
    assert command[command.index("--artifacts-destination") + 1] == "s3://bucket/mlflow"
    assert command[-2:] == ["--app-name", "basic-auth"]
    assert settings.url == "http://0.0.0.0:8080"


def test_auth_needs_an_admin_password_from_the_environment(tmp_path):
    settings = ServerSettings.from_env({"SERVER_DIR": str(tmp_path)}, auth=True)
    with pytest.raises(PsystockError, match="set MLFLOW_AUTH_ADMIN_PASSWORD"):
        prepare(settings, {})
    env = prepare(settings, {"MLFLOW_AUTH_ADMIN_PASSWORD": "s3cret-admin"})
    written = Path(env["MLFLOW_AUTH_CONFIG_PATH"]).read_text()
    assert written == auth_config(settings) and "s3cret" not in written and "admin_password" not in written
    assert "default_permission = READ" in written
    # The CSRF key is made once and kept, so a restarted server accepts its own forms.
    assert len(env["MLFLOW_FLASK_SERVER_SECRET_KEY"]) == 64
    assert (
        prepare(settings, {"MLFLOW_AUTH_ADMIN_PASSWORD": "x"})["MLFLOW_FLASK_SERVER_SECRET_KEY"]
        == env["MLFLOW_FLASK_SERVER_SECRET_KEY"]
    )
    assert (tmp_path / "flask_secret_key").stat().st_mode & 0o077 == 0


def test_mlflows_genai_job_runners_stay_off_unless_the_deployment_asks_for_them(tmp_path):
    settings, variable = ServerSettings.from_env({"SERVER_DIR": str(tmp_path)}), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
    assert prepare(settings, {})[variable] == "false"
    assert prepare(settings, {variable: "true"})[variable] == "true"


def test_the_web_workers_run_on_psystocks_event_loop():
    for command in server_command(ServerSettings.from_env({})), ui_command(ServerSettings.from_env({})):
        assert command[command.index("--uvicorn-opts") + 1] == UVICORN_OPTIONS == "--loop psystock.server:event_loop"


def test_make_ui_runs_mlflow_ui_on_the_store_as_the_team_server_runs(tmp_path, monkeypatch, capsys):
    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    assert "\tHOST=127.0.0.1 PORT=$(UI_PORT) python -m psystock.server --ui $(TRACKING_URI)\n" in makefile
    port = free_port()
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("PORT", str(port))
    monkeypatch.delenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", raising=False)
    execs = []
    monkeypatch.setattr("os.execve", lambda path, argv, env: execs.append((argv, env)))  # the process MLflow becomes
    main(["--ui", store])
    ((argv, env),) = execs
    assert argv[2:4] == ["mlflow", "ui"] and argv[argv.index("--backend-store-uri") + 1] == store
    assert (argv[argv.index("--host") + 1], argv[argv.index("--port") + 1]) == ("127.0.0.1", str(port))
    assert "--serve-artifacts" not in argv and env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert capsys.readouterr().out == f"MLflow UI on http://127.0.0.1:{port}, tracking store {store}\n"
    assert list(tmp_path.iterdir()) == []  # nothing of the team server's folder made
    with pytest.raises(SystemExit) as exited:
        main(["--ui", "http://team-server:5000"])
    assert exited.value.code == (
        "server: error: http://team-server:5000 is a tracking server: its UI is at that address (make ui opens a store)"
    )
    assert len(execs) == 1


def test_a_connection_accepted_on_a_socket_bound_before_the_loop_answers_without_nagles_delay():
    # As uvicorn's workers get it: bound by their supervisor, with no protocol number (0), where
    # asyncio turns TCP_NODELAY on only for a socket that says it is TCP.
    listener = socket.socket(socket.AF_INET)
    listener.bind(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    class Note(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted.append(transport.get_extra_info("socket"))

    async def accept_one() -> int:
        server = await asyncio.get_running_loop().create_server(Note, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname())
        while not accepted:
            await asyncio.sleep(0.01)
        nodelay = accepted[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        writer.close()
        server.close()
        return nodelay

    loop = event_loop()
    try:
        assert loop.run_until_complete(accept_one()) == 1
    finally:
        loop.close()


@pytest.mark.parametrize(
    ("name", "value", "bounds"),
    [
        ("PORT", "http", "from 1 to 65535"),
        ("PORT", "99999", "from 1 to 65535"),
        ("PORT", "0", "from 1 to 65535"),
        ("WORKERS", "two", "of at least 1"),
        ("WORKERS", "0", "of at least 1"),
        ("WORKERS", "-3", "of at least 1"),
    ],
)
def test_a_port_or_worker_count_out_of_range_is_refused_naming_it(name, value, bounds):
    with pytest.raises(PsystockError) as raised:
        ServerSettings.from_env({name: value})
    assert str(raised.value) == f"{name} must be a whole number {bounds}, got {value!r}"
    assert ServerSettings.from_env({"PORT": "8080", "WORKERS": "4"}).port == 8080


def started(*args):
    raise AssertionError(f"the server was started: {args[1]}")


def test_an_address_it_cannot_listen_on_is_refused_before_mlflow_starts(tmp_path, monkeypatch, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = ServerSettings.from_env({"SERVER_DIR": str(tmp_path), "PORT": str(port)})
        with pytest.raises(PsystockError) as raised:
            check_address(settings)
        assert str(raised.value) == (
            f"cannot listen on 127.0.0.1:{port} (Address already in use): "
            "stop what listens there, or set HOST and PORT to a free address of this machine"
        )
        monkeypatch.setenv("SERVER_DIR", str(tmp_path))
        monkeypatch.setenv("PORT", str(port))
        monkeypatch.setattr("os.execve", started)  # were the check missing, this test would become the server
        with pytest.raises(SystemExit) as exited:
            main([])
        assert exited.value.code == f"server: error: {raised.value}"
    check_address(settings)  # free again
    with pytest.raises(PsystockError, match=r"cannot listen on no\.such\.host\.invalid:5000 \("):
        check_address(ServerSettings(host="no.such.host.invalid"))
    assert capsys.readouterr().out == ""  # nothing announced for a server that never started


def test_a_server_folder_that_cannot_be_made_is_one_line(tmp_path):
    not_a_folder = tmp_path / "server"
    not_a_folder.write_text("")
    with pytest.raises(PsystockError) as raised:
        prepare(ServerSettings.from_env({"SERVER_DIR": str(not_a_folder)}), {})
    assert str(raised.value) == (
        f"cannot make the server's folder {not_a_folder} (File exists): "
        "set SERVER_DIR (or ARTIFACTS_DESTINATION) to a folder it can write"
    )


def test_passwords_are_masked_when_printed():
    assert masked("postgresql://mlflow:hunter2@db:5432/mlflow") == "postgresql://mlflow:***@db:5432/mlflow"
    assert masked("sqlite:///x.db") == "sqlite:///x.db"


def test_a_database_that_does_not_answer_is_one_line_before_mlflow_starts(tmp_path, monkeypatch):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    uri = f"postgresql+psycopg://mlflow:hunter2@127.0.0.1:{port}/mlflow"
    monkeypatch.setenv("SERVER_DIR", str(tmp_path))
    monkeypatch.setenv("PORT", str(free_port()))
    monkeypatch.setenv("BACKEND_STORE_URI", uri)
    monkeypatch.setattr("os.execve", started)  # were the check missing, this test would become the server
    with pytest.raises(SystemExit) as exited:
        main([])
    line = str(exited.value.code)
    assert line.startswith(f"server: error: cannot reach the backend store {masked(uri)} (")
    assert "Connection refused" in line and "hunter2" not in line and "\n" not in line
    assert line.endswith("): is the database running, and BACKEND_STORE_URI right?")
    with pytest.raises(PsystockError, match=r"cannot reach the backend store nosuchdriver://db/x \("):
        check_backend_store("nosuchdriver://db/x")
    check_backend_store(f"sqlite:///{tmp_path}/mlflow.db")  # a file: MLflow makes it
