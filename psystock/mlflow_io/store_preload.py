"""Imported by the steps' forkservers (:mod:`psystock.forking`): MLflow's SQL tracking store and
its table mappings, configured once there rather than in every step (about 1.5 s a step here).
Nothing here connects to a database: each step opens its own connections."""

import mlflow.store.model_registry.sqlalchemy_store
import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
import sqlalchemy.orm

sqlalchemy.orm.configure_mappers()
