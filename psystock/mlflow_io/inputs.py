"""What steps read: an input given as a path or an MLflow URI, as a local file or a typed table."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from psystock import PsystockError, names
from psystock.data import Prices, read_csv, validate_prices
from psystock.features import CLOSE_TO_CLOSE, DATE_NAME, OPEN_TO_CLOSE, FeatureSet, feature_set


@contextlib.contextmanager
def local_input(location: str, filename: str, what: str) -> Iterator[Path]:
    """A local file for a step input given as a path or an MLflow artifact URI, while the block runs.

    ``location`` may name the file itself or a directory (local or an artifact
    directory such as ``runs:/<id>/features``) that holds ``filename``. An
    artifact is downloaded into a temporary directory, removed when the block
    ends: a step leaves no copy of its inputs behind.
    """
    if not location:
        raise PsystockError(f"{what}: no input given (pass a runs:/ URI or a path)")
    with contextlib.ExitStack() as scratch:
        if names.is_uri(location) and not location.startswith("file://"):
            local = _download(location, what, scratch.enter_context(tempfile.TemporaryDirectory()))
        else:
            local = Path(location.removeprefix("file://")).expanduser()
            if not local.exists():
                raise PsystockError(f"{what}: no such file or directory: {location}")
        if local.is_dir():
            local = local / filename
            if not local.is_file():
                raise PsystockError(f"{what}: {location} has no {filename}")
        yield local


def read_input_csv(location: str, filename: str, what: str) -> pd.DataFrame:
    """The CSV table a step input names (see :func:`local_input`)."""
    with local_input(location, filename, what) as path:
        return pd.read_csv(path)


def _download(uri: str, what: str, into: str) -> Path:
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=into))
    except (MlflowException, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PsystockError(f"{what}: cannot read {uri}: {first_line}") from None


def load_features(location: str) -> FeatureSet:
    """The training table at ``location`` (a run's features directory, or a CSV).

    A ``label_dates.csv`` beside the table, as ``build_features`` writes it, is
    read too: each label's day and that day's returns, which backtests trade. A
    bare table (the reference layout, or any numeric columns with a 0/1 label
    last) is accepted without it, and then not backtested.
    """
    with local_input(location, names.FEATURES_FILE, "training_data") as path:
        try:
            table = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise PsystockError(f"training_data: cannot parse {location}: {str(exc).strip()[:200]}") from None
        days_path = path.with_name(names.LABEL_DATES_FILE)
        if not days_path.is_file():
            return feature_set(table)
        days = pd.read_csv(days_path)
    returns = days[[OPEN_TO_CLOSE, CLOSE_TO_CLOSE]] if {OPEN_TO_CLOSE, CLOSE_TO_CLOSE} <= set(days) else None
    return feature_set(table, days[DATE_NAME], returns)


def load_leaderboard(compare_run_id: str) -> pd.DataFrame:
    """The leaderboard a compare run logged."""
    location = names.run_uri(compare_run_id, names.LEADERBOARD_DIR)
    return read_input_csv(location, names.LEADERBOARD_FILE, "compare_run")


def load_prices(location: str) -> Prices:
    """The normalised prices a ``fetch_data`` run logged (or any CSV in Yahoo's layout)."""
    with local_input(location, names.PRICES_FILE, "prices") as path:
        return validate_prices(read_csv(str(path)))


def load_run_dict(run_id: str, path: str) -> dict[str, str]:
    """A JSON artifact of a run (such as ``baselines.json``) as a dict."""
    loaded: dict[str, str] = mlflow.artifacts.load_dict(names.run_uri(run_id, path))
    return loaded


def artifact_bytes(run_id: str, path: str) -> bytes | None:
    """The content of one artifact of a run, or None if it is not there."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            local = mlflow.artifacts.download_artifacts(names.run_uri(run_id, path), dst_path=scratch)
        except (MlflowException, OSError):
            return None
        return Path(local).read_bytes()
