"""train_logreg: fit and score the logreg family on a build_features table.

Reads: ``training_data`` (``runs:/<id>/features`` or a CSV in the reference layout).
Writes: see :mod:`psystock.train_step` -- test-split metrics, confusion matrix, model.
Written by ``python -m tools.generate --write`` from ``psystock.models.logreg``: do not edit.
"""

from __future__ import annotations

from dataclasses import dataclass

from psystock import train_step
from psystock.models.logreg import LogregParams
from psystock.protocol import ScoringArgs


@dataclass(frozen=True, kw_only=True)
class Args(ScoringArgs, LogregParams):
    entry_point = "train_logreg"


if __name__ == "__main__":
    train_step.main(Args, "logreg")
