"""train_xgboost: fit and score the xgboost family on a build_features table.

Reads: ``training_data`` (``runs:/<id>/features`` or a CSV in the reference layout).
Writes: see :mod:`psystock.train_step` -- test-split metrics, confusion matrix, model.
Written by ``python -m tools.generate --write`` from ``psystock.models.xgb``: do not edit.
"""

from __future__ import annotations

from dataclasses import dataclass

from psystock import train_step
from psystock.models.xgb import XgboostParams
from psystock.protocol import ScoringArgs


@dataclass(frozen=True, kw_only=True)
class Args(ScoringArgs, XgboostParams):
    entry_point = "train_xgboost"


if __name__ == "__main__":
    train_step.main(Args, "xgboost")
