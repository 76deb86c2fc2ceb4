"""Where a run comes from and what it competes with: upstream runs, datasets, leaderboard candidates."""

from __future__ import annotations

from collections.abc import Iterable

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from psystock import PsystockError, names
from psystock.mlflow_io.lifecycle import FINISHED, get_run


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


def candidate_runs(run_ids: Iterable[str] = (), experiment_id: str | None = None) -> list[Run]:
    """Finished leaderboard candidates (models and baselines): the given ones, or all of an experiment's."""
    chosen = [r for r in run_ids if r]
    if chosen:
        runs = [get_run(r) for r in chosen]
        unfinished = [r.info.run_id for r in runs if r.info.status != FINISHED]
        if unfinished:
            raise PsystockError(f"runs to compare are not FINISHED: {', '.join(unfinished)}")
        return runs
    if experiment_id is None:
        raise PsystockError("no runs to compare: name them, or an experiment")
    found: list[Run] = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.`{names.TAG_ROLE}` = '{names.CANDIDATE}' AND attributes.status = '{FINISHED}'",
        max_results=10_000,
    )
    return found
