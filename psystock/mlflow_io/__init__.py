"""The MLflow plumbing, apart from the pure domain modules, one module per reason to change.

Their vocabulary, every artifact path, tag, metric prefix and ``runs:/``/``models:/``
URI, is :mod:`psystock.names`: pure, at ground level, so the domain modules use it
without importing this package.

- ``lifecycle``: a step's own run (``run_step``), the runs main creates and links, failures.
- ``inputs`` / ``outputs`` / ``model_outputs``: what steps read from and write into runs.
- ``cache_store``: finding a reusable step run by its cache key (keys: ``psystock.caching``).
- ``lineage``: upstream runs, the dataset behind a model, leaderboard candidates.
- ``trials``: tuning trials as light child runs.
- ``champion``: the registry's champion, looked up and promoted.
- ``cli``: MLflow's ``mlflow`` command as a module, for ``psystock-mlflow``.
"""
