"""train: fit and score any model family on a build_features table, plugin families included.

Reads: ``training_data`` (``runs:/<id>/features`` or a CSV in the reference layout),
``family`` (a built-in family or one an installed package declares) and
``hyperparameters`` (``"n_estimators=200,max_depth=4"``; empty: the family's defaults).
Writes: see :mod:`psystock.train_step` -- CV and holdout metrics, interval, backtest, plots, model.
"""

from __future__ import annotations

from psystock import train_step
from psystock.train_step import TrainArgs as Args

__all__ = ["Args"]

if __name__ == "__main__":
    train_step.main_generic()
