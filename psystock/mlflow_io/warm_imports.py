"""Imported by the steps' forkservers (:mod:`psystock.forking`): what MLflow would otherwise do
again in every step before its first call. Nothing here connects to a database or starts a
thread: each step opens its own connections.

- MLflow's SQL tracking and registry stores, their table mappings configured (about 1.5 s a
  step here).
- MLflow's map of installed distributions to their modules, which it builds when a step first
  logs a model, to compare the model's requirements with what is installed (0.2-0.6 s).
"""

import mlflow.store.model_registry.sqlalchemy_store
import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
import sqlalchemy.orm
from mlflow.utils import requirements_utils

sqlalchemy.orm.configure_mappers()
# A private helper of MLflow's: if a release drops it, a step builds the map itself, as before.
getattr(requirements_utils, "_init_modules_to_packages_map", lambda: None)()
