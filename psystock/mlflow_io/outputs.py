"""What steps write into their run: tables. (Evaluations and models: :mod:`psystock.mlflow_io.model_outputs`.)"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import mlflow
import pandas as pd


def log_csv(frame: pd.DataFrame, artifact_path: str, **to_csv: Any) -> None:
    """Log ``frame`` as the CSV file ``artifact_path`` (``dir/name.csv``) of the active run."""
    path = PurePosixPath(artifact_path)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp, path.name)
        frame.to_csv(local, **{"index": False, **to_csv})
        mlflow.log_artifact(str(local), str(path.parent) if str(path.parent) != "." else None)
