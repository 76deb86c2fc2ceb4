"""train_forest: fit and score the forest family on a build_features table.

Reads: ``training_data`` (``runs:/<id>/features`` or a CSV in the reference layout).
Writes: see :mod:`psystock.train_step` -- test-split metrics, confusion matrix, model.
Written by ``python -m tools.generate --write`` from ``psystock.models.forest``: do not edit.
"""

from __future__ import annotations

from dataclasses import dataclass

from psystock import train_step
from psystock.models.forest import ForestParams
from psystock.protocol import ScoringArgs


@dataclass(frozen=True, kw_only=True)
class Args(ScoringArgs, ForestParams):
    entry_point = "train_forest"


if __name__ == "__main__":
    train_step.main(Args, "forest")
