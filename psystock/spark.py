"""Spark for psystock: a session on a master, and pipelines run as Spark tasks.

Two uses: hyperopt's ``SparkTrials`` runs tuning trials on a session's
workers; a universe runs each ticker's pipeline as one task
(:func:`run_launches`). Local mode (``local[2]``) needs Java 17+ and pyspark
here; a cluster (``spark://head:7077``) needs them on every worker.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any

from psystock import PsystockError
from psystock.entry_points import PROJECT_ROOT
from psystock.mlflow_io.launch import Launch, Launched

log = logging.getLogger("psystock.spark")


def start_session(master: str, app_name: str, python_path: bool = True) -> Any:
    """A Spark session on ``master`` whose Python workers run this interpreter.

    With ``python_path`` the workers also import this checkout's psystock (for
    functions shipped by reference, as ``SparkTrials`` ships its objective).
    """
    # pyspark warns that it does not yet claim support for pandas 3; psystock does not use pyspark.pandas.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise PsystockError(
            "spark_master needs pyspark: install the spark extra (pip install 'psystock[spark]'; "
            "`make install` does) and Java 17+"
        ) from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # stay on loopback
    builder = SparkSession.builder.master(master).appName(app_name).config("spark.ui.showConsoleProgress", "false")
    if python_path:
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
        builder = builder.config("spark.executorEnv.PYTHONPATH", os.environ["PYTHONPATH"])
    log.info("starting Spark on %s", master)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # py4j and JVM start-up errors have no common type
        raise PsystockError(f"cannot start Spark on {master!r}: {str(exc).splitlines()[0]}") from None
    session.sparkContext.setLogLevel("ERROR")
    return session


def run_launches(master: str, launches: list[Launch], slots: int) -> list[Launched]:
    """Run each launch as one Spark task on ``master``, at most ``slots`` at once (0: as many as
    Spark schedules); the results in the order given.

    The task function travels by value (:mod:`psystock.mlflow_io.launch` needs
    MLflow alone), so a worker needs MLflow and the environment manager, not
    psystock. A task never raises: a failed pipeline is a result, and Spark
    does not run it again.
    """
    from pyspark import cloudpickle

    from psystock.mlflow_io import launch

    session = start_session(master, "psystock-universe", python_path=False)
    cloudpickle.register_pickle_by_value(launch)
    try:
        # One partition per slot: Spark runs a partition's launches one after another.
        data = session.sparkContext.parallelize(launches, numSlices=min(len(launches), slots or len(launches)))
        log.info("running %d pipelines as Spark tasks on %s", len(launches), master)
        results: list[Launched] = data.map(launch.launch_anywhere).collect()
    except Exception as exc:  # the JVM or a worker died; the runs it started stay as they are
        raise PsystockError(f"Spark on {master!r} failed: {str(exc).strip().splitlines()[0]}") from None
    finally:
        cloudpickle.unregister_pickle_by_value(launch)
        session.stop()
    return results
