"""Where a run comes from: upstream runs, datasets, data sources."""

from __future__ import annotations

import logging
import warnings

import mlflow
from mlflow.data.dataset import Dataset
from mlflow.data.dataset_source import DatasetSource
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from psystock import names
from psystock.mlflow_io.lifecycle import get_run, is_duplicate_key

log = logging.getLogger("psystock.lineage")


def upstream_run(run: Run, param: str) -> Run | None:
    """The run whose ``runs:/`` URI ``run`` took as parameter ``param``, if any."""
    run_id = names.run_id_from_uri(run.data.params.get(param, ""))
    return get_run(run_id) if run_id else None


def _prices_run(run: Run) -> tuple[Run | None, Run | None]:
    """The build_features and fetch_data runs behind a model run (``training_data`` -> ``prices``)."""
    features = upstream_run(run, "training_data")
    return features, upstream_run(features, "prices") if features else None


def dataset_digest(run: Run) -> str | None:
    """The digest of the prices a model run was trained on, following its inputs back."""
    _, prices = _prices_run(run)
    return prices.data.tags.get(names.TAG_DATASET_DIGEST) if prices else None


def dataset_facts(run: Run) -> dict[str, object]:
    """Ticker, range, rows and digest of the prices behind a model run (following its inputs)."""
    features, prices = _prices_run(run)
    if features is None or prices is None:
        return {"training data": run.data.params.get("training_data", "?")}
    tags = prices.data.tags
    return {
        "ticker": tags.get(names.TAG_TICKER, "?"),
        "range": f"{tags.get(names.TAG_FIRST_DATE, '?')} to {tags.get(names.TAG_LAST_DATE, '?')}",
        "rows (days)": int(prices.data.metrics.get("rows", 0)),
        "digest": tags.get(names.TAG_DATASET_DIGEST, "?"),
        "source": prices.data.params.get("source", "?"),
        "fetch run": prices.info.run_id,
        "features run": features.info.run_id,
    }


def split_facts(run: Run) -> dict[str, object]:
    """How a model run split its data: parameters and the days on each side."""
    params, tags = run.data.params, run.data.tags
    facts: dict[str, object] = {name: params.get(name, "?") for name in ("split", "test_size", "seed")}
    facts["train rows"] = tags.get(names.TAG_N_TRAIN, "?")
    facts["test rows"] = tags.get(names.TAG_N_TEST, "?")
    if names.TAG_TEST_FIRST_DATE in tags:
        facts["train days"] = f"{tags[names.TAG_TRAIN_FIRST_DATE]} to {tags[names.TAG_TRAIN_LAST_DATE]}"
        facts["test days"] = f"{tags[names.TAG_TEST_FIRST_DATE]} to {tags[names.TAG_TEST_LAST_DATE]}"
    return facts


def prices_source(source: str, ticker: str, start: str, end: str) -> DatasetSource:
    """Where fetched bars came from, as the dataset's source: Yahoo's page for the range, or the CSV."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.http_dataset_source import HTTPDatasetSource

    from psystock.data import YAHOO

    if source == YAHOO:
        return HTTPDatasetSource(f"https://finance.yahoo.com/quote/{ticker}/history?period1={start}&period2={end}")
    with warnings.catch_warnings():
        # A local path matches two artifact-source types that are the same to us.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        return resolve_dataset_source(source)


def log_dataset(dataset: Dataset, context: str, attempts: int = 3) -> None:
    """Log ``dataset`` as an input of the active run, even when another run logs it at the same moment.

    The tracking store looks for the dataset (experiment, name, digest) and
    inserts it when missing, in one transaction; two runs that log the same new
    dataset at once both find it missing, and the later insert fails on the
    store's unique key (seen with pipelines started together on PostgreSQL).
    Trying again finds the row the other run committed and links this run to it.
    """
    for attempt in range(1, attempts + 1):
        try:
            mlflow.log_input(dataset, context=context)
            return
        except MlflowException as error:
            if attempt == attempts or not is_duplicate_key(error):
                raise
            log.info("another run stored dataset %r at the same moment; linking this run to it", dataset.name)
