"""A local tracking store made ready once, before anything is launched on it.

Two first ``make run``s on a new ``./mlflow.db`` would each run MLflow's schema
creation, and the one that loses can leave the file at a half-migrated
revision that every later client refuses; both would also create the
experiment. :func:`prepare` does both once, under an exclusive lock on
``<file>.lock``: it creates or upgrades the schema (as ``mlflow db upgrade``
does) and creates the experiment. A file ``<file>.ready`` records the MLflow
version that made the store ready, so a store that is ready costs a look with
the standard library, not an MLflow import; another MLflow version upgrades it.

Usage: ``python -m psystock.tracking_store <tracking URI> [experiment]``; URIs
other than ``sqlite:///`` (a server, PostgreSQL) are left to their owner.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import sqlite3
import sys
from pathlib import Path

from psystock import PsystockError


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` URI (``sqlite:////abs/path`` is absolute), or None."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def _ready_file(db: Path) -> Path:
    return db.with_name(f"{db.name}.ready")


def is_ready(db: Path, experiment: str = "") -> bool:
    """Whether this MLflow version made ``db`` ready and, if named, the experiment exists."""
    ready = _ready_file(db)
    if not (db.is_file() and ready.is_file() and ready.read_text().strip() == importlib.metadata.version("mlflow")):
        return False
    if not experiment:
        return True
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        return connection.execute("SELECT 1 FROM experiments WHERE name = ?", (experiment,)).fetchone() is not None


def prepare(uri: str, experiment: str = "") -> bool:
    """Create or upgrade the SQLite store at ``uri`` and create ``experiment`` in it, once whoever
    else does the same at the same time; True if this call did it."""
    db = sqlite_path(uri)
    if db is None:
        return False
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        with open(db.with_name(f"{db.name}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if is_ready(db, experiment):
                return False
            _make_ready(uri, experiment)
            _ready_file(db).write_text(importlib.metadata.version("mlflow") + "\n")
    except OSError as exc:
        raise _unusable(uri, f"{exc.strerror}: {exc.filename}") from None
    except sqlite3.DatabaseError as exc:  # a store made ready once, damaged since
        raise _unusable(uri, str(exc)) from None
    return True


def _unusable(uri: str, reason: str) -> PsystockError:
    """The line for a store that cannot be used, a setting of the user's."""
    return PsystockError(
        f"cannot use the tracking store {uri} ({reason}): point MLFLOW_TRACKING_URI (make: TRACKING_URI) "
        "at an MLflow SQLite file, or a new one in a folder you can write"
    )


def _make_ready(uri: str, experiment: str) -> None:
    import sqlalchemy.exc
    from mlflow.db import upgrade
    from mlflow.tracking import MlflowClient

    try:
        upgrade.main([uri], standalone_mode=False)  # `mlflow db upgrade`: creates an empty store, upgrades an old one
    except sqlalchemy.exc.DatabaseError as exc:  # not a database, or a damaged one
        raise _unusable(uri, str(exc.orig)) from None
    client = MlflowClient(uri)
    if experiment and client.get_experiment_by_name(experiment) is None:
        client.create_experiment(experiment)


if __name__ == "__main__":
    if not 2 <= len(sys.argv) <= 3:
        sys.exit("usage: python -m psystock.tracking_store <tracking URI> [experiment]")
    try:
        prepare(*sys.argv[1:])
    except PsystockError as exc:
        sys.exit(f"tracking store: error: {exc}")
