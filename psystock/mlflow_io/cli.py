"""``python -m psystock.mlflow_io.cli ...``: MLflow's ``mlflow`` command, as the executable runs it and
named as it names itself; what ``psystock-mlflow`` runs, in the warm server or in its own process
(:func:`psystock.handover.mlflow_command`)."""

from mlflow.cli import cli

if __name__ == "__main__":
    cli.main(prog_name="mlflow")
