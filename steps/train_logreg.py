"""train_logreg: fit and score the logreg family on a build_features table.

Reads: ``training_data`` (``runs:/<id>/features`` or a CSV in the reference layout).
Writes: see :mod:`psystock.train_step` -- test-split metrics, confusion matrix, model.
"""

from psystock import train_step

if __name__ == "__main__":
    train_step.main("logreg")
