"""Throw-away services on 127.0.0.1 for tests and benchmarks, each on a free port, stopped afterwards:

- :class:`TrackingServer`: ``python -m psystock.server``, exactly what ``make server`` runs;
- :class:`Postgres`: a PostgreSQL cluster made by ``initdb`` in a temporary folder;
- :class:`GitDaemon`: ``git daemon`` serving bare repositories, for ``mlflow run git://...``.
"""

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
from collections.abc import Callable, Mapping
from pathlib import Path

from psystock.server import ServerSettings


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it holds; a TimeoutError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


class TrackingServer:
    """``python -m psystock.server`` (what ``make server`` runs) in its own process group."""

    def __init__(self, root: Path, backend_store_uri: str = "", auth: bool = False, env: dict[str, str] | None = None):
        self.root = root
        self.port = free_port()
        self.environ = dict(
            os.environ, **(env or {}), HOST="127.0.0.1", PORT=str(self.port), SERVER_DIR=str(root), WORKERS="2"
        )
        if backend_store_uri:
            self.environ["BACKEND_STORE_URI"] = backend_store_uri
        self.environ.pop("MLFLOW_TRACKING_URI", None)
        self.auth = auth
        self.settings = ServerSettings.from_env(self.environ, auth=auth)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "server.log"

    @property
    def url(self) -> str:
        return self.settings.url

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def _exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def start(self) -> TrackingServer:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "psystock.server", *(["--auth"] if self.auth else [])],
                env=self.environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until(lambda: self.healthy() or self._exited(), 90, "mlflow server")
        except TimeoutError:
            self.stop()
            raise
        if self._exited():
            raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-2000:]}")
        return self

    def commands(self) -> list[str]:
        """The command lines of the server's processes now: those of its session (it starts one)."""
        assert self.process is not None
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
                command = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ").strip()
            except OSError:  # ended meanwhile
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[3]) == self.process.pid:  # state ppid pgrp session
                found.append(command)
        return found

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        wait_until(lambda: not self.healthy(), 30, "server shutdown")


def find_initdb() -> Path:
    """PostgreSQL's ``initdb``: on PATH, or where Debian keeps it (``/usr/lib/postgresql/<version>/bin``)."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)  # newest version first
    found = shutil.which("initdb") or next(iter(debian), None)
    if found is None:
        raise RuntimeError("PostgreSQL's initdb is not installed (Debian: apt install postgresql)")
    return Path(found).resolve()


class Postgres:
    """A PostgreSQL cluster made by ``initdb`` in a temporary folder, listening on 127.0.0.1 only."""

    def __init__(self) -> None:
        self.bin = find_initdb().parent
        # initdb refuses to run as root; run the server as the postgres user then.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        # The postgres user cannot enter root's own folders, pytest's temporary one among them
        # (tests/conftest.py points TMPDIR there): its cluster lives in the machine's /tmp then.
        self.dir = Path(tempfile.mkdtemp(prefix="psystock-pg-", dir="/tmp" if self.as_user else None))
        if self.as_user:
            shutil.chown(self.dir, "postgres")
        self.data = self.dir / "data"
        self.port = free_port()

    def _run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, capture_output=True, cwd=self.dir)

    def start(self) -> Postgres:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "postgres.log"),
            "-w",
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c max_connections=200",
            "start",
        )
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "mlflow")
        return self

    @property
    def uri(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/mlflow"

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            cwd=self.dir,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


def git(*args: str, cwd: Path) -> str:
    """Run git in ``cwd``; its stdout, stripped."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


class GitDaemon:
    """``git daemon`` on 127.0.0.1 serving the bare repositories in ``root`` as ``git://127.0.0.1:<port>/<name>``."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, repository: str) -> str:
        return f"git://127.0.0.1:{self.port}/{repository}"

    def publish(self, checkout: Path, name: str) -> str:
        """A bare clone of ``checkout`` (its committed state) served as ``name``; its URL."""
        git("clone", "--quiet", "--bare", str(checkout), str(self.root / name), cwd=self.root)
        return self.url(name)

    def start(self) -> GitDaemon:
        self.process = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                f"--base-path={self.root}",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def wait_for(self, url: str) -> None:
        """Block until ``url`` answers ``git ls-remote``."""
        wait_until(
            lambda: subprocess.run(["git", "ls-remote", url], capture_output=True).returncode == 0, 30, "git daemon"
        )

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait()


def mlflow_run_command(
    project: Path | str,
    entry_point: str,
    experiment_id: str,
    params: Mapping[str, object],
    env_manager: str = "local",
    options: tuple[str, ...] | list[str] = (),
    executable: str = "mlflow",
) -> list[str]:
    """``mlflow run <project> -e <entry_point> ... -P name=value`` with this interpreter's ``mlflow``
    (or another command of its environment that takes ``mlflow``'s arguments: ``psystock-mlflow``)."""
    command = [
        os.path.join(os.path.dirname(sys.executable), executable),
        "run",
        str(project),
        "-e",
        entry_point,
        "--env-manager",
        env_manager,
        "--experiment-id",
        experiment_id,
        *options,
    ]
    for name, value in params.items():
        command += ["-P", f"{name}={value}"]
    return command
