"""Helpers the tests share: throw-away tracking stores and real `mlflow run` / step processes."""
