"""The team's tracking server: ``mlflow server`` with a SQL backend store and proxied artifacts.

``make server`` and ``make server-auth`` run ``python -m psystock.server
[--auth]``; the tests start the very same command. ``make ui`` runs ``python -m
psystock.server --ui <tracking URI>``: ``mlflow ui`` on a local store, with the
same checks, job setting and event loop. Settings come from the environment:

``HOST`` (127.0.0.1), ``PORT`` (5000), ``BACKEND_STORE_URI`` (a SQLite file in
``SERVER_DIR``; ``postgresql://user:password@host:5432/mlflow`` for a real
deployment), ``ARTIFACTS_DESTINATION`` (a folder in ``SERVER_DIR``; an object
store such as ``s3://bucket/mlflow`` for a real deployment), ``SERVER_DIR``
(``mlflow-server``), ``WORKERS`` (2).

MLflow's job execution (a job runner and its huey consumers beside the web workers, eight
interpreters, for its GenAI scorers, evaluations and optimizers) is off unless
``MLFLOW_SERVER_ENABLE_JOB_EXECUTION`` says otherwise: psystock runs no such jobs, and they
took most of the server's start-up and three quarters of its CPU.

Its web workers run on :func:`event_loop`, asyncio's loop with ``TCP_NODELAY`` on the socket
they share: with more than one worker, uvicorn (0.54) binds that socket itself and asyncio then
leaves Nagle's algorithm on for every connection it accepts, so each request on a kept-alive
connection, which is every MLflow client's after its first, waited about 40 ms for the client's
delayed acknowledgement (uvicorn issue 3149).

Artifacts are proxied (``--serve-artifacts``): clients upload and download
through the server, so they need no credentials for the artifact store.

With ``--auth`` the server runs MLflow's basic-auth app. The admin password is
read by MLflow from ``MLFLOW_AUTH_ADMIN_PASSWORD`` (nothing in this repository
holds one); users are kept in ``AUTH_DATABASE_URI`` (a SQLite file in
``SERVER_DIR``) and get READ on experiments they did not create. The key that
signs its CSRF tokens is ``MLFLOW_FLASK_SERVER_SECRET_KEY``, or one made once
and kept in ``SERVER_DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from psystock import PsystockError

ADMIN_PASSWORD_VARIABLE = "MLFLOW_AUTH_ADMIN_PASSWORD"
SECRET_KEY_VARIABLE = "MLFLOW_FLASK_SERVER_SECRET_KEY"  # signs the auth app's CSRF tokens
JOB_EXECUTION_VARIABLE = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"  # MLflow's GenAI job runners, on by default
UVICORN_OPTIONS = "--loop psystock.server:event_loop"  # the web workers' loop (see the module's docstring)


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 5000
    server_dir: Path = Path("mlflow-server")
    backend_store_uri: str = ""
    artifacts_destination: str = ""
    auth_database_uri: str = ""
    workers: int = 2
    auth: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str], auth: bool = False) -> ServerSettings:
        server_dir = Path(environ.get("SERVER_DIR", "mlflow-server")).resolve()
        port = _whole_number(environ, "PORT", cls.port, 1, 65535)
        workers = _whole_number(environ, "WORKERS", cls.workers, 1)
        return cls(
            host=environ.get("HOST", "127.0.0.1"),
            port=port,
            server_dir=server_dir,
            backend_store_uri=environ.get("BACKEND_STORE_URI") or f"sqlite:///{server_dir / 'mlflow.db'}",
            artifacts_destination=environ.get("ARTIFACTS_DESTINATION") or str(server_dir / "artifacts"),
            auth_database_uri=environ.get("AUTH_DATABASE_URI") or f"sqlite:///{server_dir / 'basic_auth.db'}",
            workers=workers,
            auth=auth,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def auth_config_path(self) -> Path:
        return self.server_dir / "basic_auth.ini"


def _whole_number(environ: Mapping[str, str], name: str, default: int, low: int, high: int | None = None) -> int:
    given = environ.get(name, str(default))
    number = int(given) if given.strip().isdigit() else None
    if number is None or number < low or (high is not None and number > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise PsystockError(f"{name} must be a whole number {bounds}, got {given!r}")
    return number


def check_address(settings: ServerSettings) -> None:
    """Refuse an address the server cannot listen on (taken, not this machine's, a name that does
    not resolve) before MLflow starts: uvicorn reports some of these with a traceback, and with
    several workers its supervisor then exits with status 0."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds it
            probe.bind(address)
    except OSError as exc:
        raise PsystockError(
            f"cannot listen on {settings.host}:{settings.port} ({exc.strerror or exc}): "
            "stop what listens there, or set HOST and PORT to a free address of this machine"
        ) from None


def _mlflow_command(verb: str, settings: ServerSettings, python: str) -> list[str]:
    return [
        python,
        "-m",
        "mlflow",
        verb,
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        str(settings.workers),
        "--backend-store-uri",
        settings.backend_store_uri,
        "--uvicorn-opts",
        UVICORN_OPTIONS,
    ]


def server_command(settings: ServerSettings, python: str = sys.executable) -> list[str]:
    """The ``mlflow server`` command line for ``settings``."""
    command = _mlflow_command("server", settings, python)
    command += ["--serve-artifacts", "--artifacts-destination", settings.artifacts_destination]
    if settings.auth:
        command += ["--app-name", "basic-auth"]
    return command


def ui_command(settings: ServerSettings, python: str = sys.executable) -> list[str]:
    """The ``mlflow ui`` command line of ``make ui``: one user's browser on ``settings``' backend
    store, which holds where each run's artifacts are."""
    return _mlflow_command("ui", settings, python)


class _NoDelayLoop(asyncio.SelectorEventLoop):
    async def create_server(self, *args: Any, **kwargs: Any) -> asyncio.Server:
        sock = kwargs.get("sock")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # what it accepts inherits it
        return await super().create_server(*args, **kwargs)


def event_loop() -> asyncio.AbstractEventLoop:
    """The web workers' event loop: asyncio's, with ``TCP_NODELAY`` on the listening socket it is
    given, so that no response waits on Nagle's algorithm (see the module's docstring)."""
    return _NoDelayLoop()


def auth_config(settings: ServerSettings) -> str:
    """The basic-auth app's settings file: no password in it (MLflow reads it from the environment)."""
    return (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {settings.auth_database_uri}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # Checking a password costs a PBKDF2 hash on every request; a pipeline makes hundreds.
        # Cached per worker for 30 s: a changed or revoked password takes up to that long to apply.
        "auth_cache_ttl_seconds = 30\n"
    )


def secret_key(server_dir: Path) -> str:
    """This server's CSRF signing key: made once, kept (owner-only) in ``server_dir`` across restarts.
    Servers behind one load balancer must share it: set MLFLOW_FLASK_SERVER_SECRET_KEY instead."""
    path = server_dir / "flask_secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with MLflow's job execution off unless it says otherwise."""
    return {JOB_EXECUTION_VARIABLE: "false", **environ}


def prepare(settings: ServerSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """Create what the server writes into; return the environment to start it with."""
    env = environment(environ)
    try:
        settings.server_dir.mkdir(parents=True, exist_ok=True)
        if "://" not in settings.artifacts_destination:
            Path(settings.artifacts_destination).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PsystockError(
            f"cannot make the server's folder {exc.filename} ({exc.strerror}): "
            "set SERVER_DIR (or ARTIFACTS_DESTINATION) to a folder it can write"
        ) from None
    if settings.auth:
        if not environ.get(ADMIN_PASSWORD_VARIABLE):
            raise PsystockError(
                f"set {ADMIN_PASSWORD_VARIABLE} to the admin password the server should start with "
                "(it is only read the first time, when the user store is empty)"
            )
        settings.auth_config_path.write_text(auth_config(settings))
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(settings.auth_config_path)
        env.setdefault(SECRET_KEY_VARIABLE, secret_key(settings.server_dir))
    return env


def masked(uri: str) -> str:
    """``uri`` with any password replaced, for printing."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", uri)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m psystock.server", description=__doc__.splitlines()[0])
    parser.add_argument("--auth", action="store_true", help="run MLflow's basic-auth app")
    parser.add_argument("--ui", metavar="TRACKING_URI", help="run `mlflow ui` on this tracking store instead (make ui)")
    args = parser.parse_args(argv)
    try:
        settings = ServerSettings.from_env(os.environ, auth=args.auth)
        command, env, banner = _ui(settings, args.ui) if args.ui else _server(settings)
    except PsystockError as exc:
        sys.exit(f"server: error: {exc}")
    print(banner, flush=True)
    os.execve(command[0], command, env)


def check_backend_store(uri: str, timeout: int = 10) -> None:
    """Refuse a database backend store that does not answer (within ``timeout`` seconds) before
    MLflow starts: its server would retry for about 100 s, printing a traceback each time."""
    if "://" not in uri or uri.startswith(("sqlite:", "file:")):
        return
    import sqlalchemy

    # libpq's and MySQL's drivers wait as long as the network does unless told.
    waiting = {"connect_timeout": timeout} if uri.startswith(("postgresql", "mysql")) else {}
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=waiting, poolclass=sqlalchemy.pool.NullPool)
        with engine.connect():
            pass
    except Exception as exc:  # a missing driver, a refused connection, a wrong password: all one line
        reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PsystockError(
            f"cannot reach the backend store {masked(uri)} ({reason}): "
            "is the database running, and BACKEND_STORE_URI right?"
        ) from None


def _server(settings: ServerSettings) -> tuple[list[str], dict[str, str], str]:
    """``mlflow server``'s command, environment and what it says first."""
    check_address(settings)
    check_backend_store(settings.backend_store_uri)
    env = prepare(settings, os.environ)
    banner = (
        f"tracking server on {settings.url}\n  backend store: {masked(settings.backend_store_uri)}\n"
        f"  artifacts (proxied): {settings.artifacts_destination}"
        + ("\n  basic-auth: on (users in " + settings.auth_database_uri + ")" if settings.auth else "")
    )
    return server_command(settings), env, banner


def _ui(settings: ServerSettings, tracking_uri: str) -> tuple[list[str], dict[str, str], str]:
    """``mlflow ui``'s command on ``tracking_uri``, environment and what it says first."""
    if tracking_uri.startswith(("http://", "https://")):
        raise PsystockError(f"{tracking_uri} is a tracking server: its UI is at that address (make ui opens a store)")
    settings = replace(settings, backend_store_uri=tracking_uri)
    check_address(settings)
    banner = f"MLflow UI on {settings.url}, tracking store {masked(settings.backend_store_uri)}"
    return ui_command(settings), environment(os.environ), banner


if __name__ == "__main__":
    main()
