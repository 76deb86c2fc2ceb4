"""train_lightgbm: fit and score the lightgbm family on a build_features table.

Reads: ``training_data`` (``runs:/<id>/features`` or a CSV in the reference layout).
Writes: see :mod:`psystock.train_step` -- test-split metrics, confusion matrix, model.
Written by ``python -m tools.generate --write`` from ``psystock.models.lgbm``: do not edit.
"""

from __future__ import annotations

from dataclasses import dataclass

from psystock import train_step
from psystock.models.lgbm import LightgbmParams
from psystock.protocol import ScoringArgs


@dataclass(frozen=True, kw_only=True)
class Args(ScoringArgs, LightgbmParams):
    entry_point = "train_lightgbm"


if __name__ == "__main__":
    train_step.main(Args, "lightgbm")
