"""Real servers for the tests: ``mlflow server`` as ``make server`` starts it, and PostgreSQL
from ``initdb`` in a temporary folder. Both on free 127.0.0.1 ports, stopped afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from psystock.server import ServerSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


class TrackingServer:
    """``python -m psystock.server`` (what ``make server`` runs) in its own process group."""

    def __init__(self, root: Path, backend_store_uri: str = "", auth: bool = False, env: dict | None = None):
        self.root = root
        self.port = free_port()
        self.environ = dict(os.environ, **(env or {}), HOST="127.0.0.1", PORT=str(self.port),
                            SERVER_DIR=str(root), WORKERS="2")
        if backend_store_uri:
            self.environ["BACKEND_STORE_URI"] = backend_store_uri
        self.environ.pop("MLFLOW_TRACKING_URI", None)
        self.auth = auth
        self.settings = ServerSettings.from_env(self.environ, auth=auth)
        self.process: subprocess.Popen | None = None
        self.log = root / "server.log"

    @property
    def url(self) -> str:
        return self.settings.url

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    def start(self) -> TrackingServer:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "psystock.server", *(["--auth"] if self.auth else [])],
                env=self.environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            wait_until(lambda: self.healthy() or self.process.poll() is not None, 90, "mlflow server")
        except TimeoutError:
            self.stop()
            raise
        if self.process.poll() is not None:
            raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-2000:]}")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        wait_until(lambda: not self.healthy(), 30, "server shutdown")


class Postgres:
    """A PostgreSQL cluster made by ``initdb`` in a temporary folder, listening on 127.0.0.1 only."""

    def __init__(self):
        # Debian keeps initdb off PATH, under /usr/lib/postgresql/<version>/bin.
        initdb = shutil.which("initdb") or next(reversed(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None)
        if initdb is None:
            pytest.skip("PostgreSQL's initdb is not installed (Debian: apt install postgresql)")
        self.bin = Path(initdb).resolve().parent
        # initdb refuses to run as root; run the server as the postgres user then.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.dir = Path(tempfile.mkdtemp(prefix="psystock-pg-"))
        if self.as_user:
            shutil.chown(self.dir, "postgres")
        self.data = self.dir / "data"
        self.port = free_port()

    def _run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, capture_output=True, cwd=self.dir)

    def start(self) -> Postgres:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "postgres.log"), "-w",
                  "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c max_connections=200",
                  "start")
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "mlflow")
        return self

    @property
    def uri(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/mlflow"

    def stop(self) -> None:
        subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                       capture_output=True, cwd=self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)
