"""The Model Registry's champion: its lookup and its promotion.

A registered model is ``psystock-<ticker>``; the version that ``predict`` and
serving use holds the alias ``champion``. Whether a model may become it is the
gate's to say (:mod:`psystock.registry`, pure).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pandas as pd
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from psystock import PsystockError, names
from psystock.contract import BARS, CONTRACT, HISTORY, Recipe
from psystock.mlflow_io import lineage
from psystock.mlflow_io.inputs import load_features, load_prices, read_input_csv
from psystock.mlflow_io.lifecycle import active_run, get_run
from psystock.registry import Challenge, Incumbent, Weighing, version_tags
from psystock.universe import UNWATCHED, ChampionLife

log = logging.getLogger("psystock.register")


def version_by_alias(ticker: str, alias: str = names.CHAMPION) -> ModelVersion | None:
    """The version of ``psystock-<ticker>`` that holds ``alias``, or None."""
    try:
        return MlflowClient().get_model_version_by_alias(names.model_name(ticker), alias)
    except MlflowException:
        return None


def version_uri(version: ModelVersion) -> str:
    return names.model_version_uri(version.name, version.version)


def refit_end(version: ModelVersion) -> str:
    """The last day a version was refit on (its ``refit_range`` tag), or "" when it does not say."""
    end = version.tags.get(names.VERSION_TAG_REFIT_RANGE, "").partition("..")[2]
    return end if end[:1].isdigit() else ""


def champion_uri(ticker: str) -> str | None:
    """``models:/psystock-<ticker>/<version>`` of the champion, or None if the ticker has none yet."""
    version = version_by_alias(ticker)
    return version_uri(version) if version is not None else None


def champion_refit_end(ticker: str) -> tuple[str, str] | None:
    """The champion's ``models:/`` version URI and the last day of its refit range, if it has one
    that keeps the serving contract."""
    version = version_by_alias(ticker)
    if version is None or not refit_end(version) or names.VERSION_TAG_CONTRACT not in version.tags:
        return None  # a version from before the serving contract cannot be asked for its history
    return version_uri(version), refit_end(version)


def life(ticker: str, experiment_id: str, now: datetime) -> ChampionLife:
    """The champion of ``ticker`` as the universe report shows it: its version, its age, its health
    from the latest finished ``monitor`` of it in ``experiment_id``, and a challenger waiting."""
    version = version_by_alias(ticker)
    if version is None:
        return ChampionLife()
    uri = version_uri(version)
    age = int((now.timestamp() * 1000 - version.creation_timestamp) // 86_400_000)
    watched = MlflowClient().search_runs(
        [experiment_id],
        f"tags.`{names.TAG_MONITORED_MODEL}` = '{uri}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    health = watched[0].data.tags.get(names.TAG_HEALTH, UNWATCHED) if watched else UNWATCHED
    waiting = version_by_alias(ticker, names.CHALLENGER)
    newer = waiting is not None and int(waiting.version) > int(version.version)
    challenger = version_uri(waiting) if waiting is not None and newer else ""
    return ChampionLife(uri, age, health, challenger)


def promote(ticker: str, model_run_id: str, tags: dict[str, str], alias: str = names.CHAMPION) -> int:
    """Register the run's model as a new version of ``psystock-<ticker>``, move ``alias`` (the
    champion's, or the challenger's) to it, and return the version number."""
    import mlflow

    name = names.model_name(ticker)
    version = mlflow.register_model(names.run_uri(model_run_id, names.MODEL), name, tags=tags)
    MlflowClient().set_registered_model_alias(name, alias, version.version)
    return int(version.version)


def incumbent(ticker: str, tuned: Run) -> Incumbent | None:
    """The champion of ``ticker`` a candidate meets, if there is one, with its answer for every day
    of the candidate's bars that the bars before it let it predict."""
    from psystock.mlflow_io.serving import loaded_model, recipe_of

    version = version_by_alias(ticker)
    if version is None:
        return None
    uri, end = version_uri(version), refit_end(version)
    if not end:
        return Incumbent(uri, end, None, "its version does not say which days it was refit on")
    made = recipe(tuned, tuned.data.tags[names.TAG_FAMILY])
    if made is None:
        return Incumbent(uri, end, None, "the candidate's training data is a CSV: no bars to ask it with")
    with loaded_model(uri, ticker) as model:
        if recipe_of(model) is None:
            return Incumbent(uri, end, None, "it predates the serving contract and takes feature rows, not bars")
        log.info("asking the champion %s what it would have said on each day of the candidate's bars", uri)
        answers = model.predict(made[1].loc[:, list(BARS)], params={HISTORY: True})
    return Incumbent(uri, end, pd.DataFrame(answers))


def tune_run(run: str) -> Run:
    """The tune run that ``run`` (a run id or ``runs:/`` URI) names, or a clear error."""
    found = get_run(names.run_id_of(run))
    if names.TAG_FAMILY not in found.data.tags or not _best_params(found):
        raise PsystockError(f"run {found.info.run_id} is not a tune run: pass the run of a tune step")
    return found


def holdout_answers(run_id: str, what: str) -> pd.DataFrame:
    """The holdout answers a model or baseline run logged (``holdout/predictions.csv``)."""
    return read_input_csv(names.run_uri(run_id, names.HOLDOUT_PREDICTIONS), "predictions.csv", what)


def meet(
    ticker: str, tuned: Run, metric: str, confidence: float, block_length: int, seed: int, min_improvement: float
) -> Challenge | None:
    """The tuned model against the champion of ``ticker``, if there is one (:func:`registry.challenge`),
    its numbers and reason logged to the active run."""
    import mlflow

    from psystock.registry import challenge

    met = incumbent(ticker, tuned)
    if met is None:
        return None
    candidate = holdout_answers(tuned.info.run_id, "tuned_run")
    found = challenge(metric, candidate, met, confidence, block_length, seed, min_improvement)
    mlflow.log_metrics(found.metrics())
    mlflow.set_tags(found.tags())
    log.info("against the champion: %s", found.reason)
    return found


def refit_and_promote(
    tuned: Run, ticker: str, weighing: Weighing, seed: int, challenge: Challenge | None = None
) -> int:
    """Refit the tuned family with its tuned parameters on every row, log it as this run's model
    (serving contract: bars in, the next day's answer out), register it as the champion of
    ``ticker`` (or its challenger, when it did not beat the champion) and return the version's number."""
    # Imported here: only a model that passed the gate needs its framework loaded.
    from psystock.mlflow_io.model_outputs import log_fitted_model
    from psystock.mlflow_io.served_model import log_served_model
    from psystock.models import get_family
    from psystock.training import fit_on

    family = get_family(tuned.data.tags[names.TAG_FAMILY])
    data = load_features(tuned.data.params["training_data"])
    log.info("refitting %s with the tuned parameters on all %d rows", family.name, len(data))
    model = fit_on(family, data, family.params(_best_params(tuned)), int(tuned.data.params.get("seed", seed)))
    made = recipe(tuned, family.name)
    kept = {names.VERSION_TAG_CONTRACT: CONTRACT} if made is not None else {}
    if made is None:
        log.warning(
            "the training data is not a build_features run's, so the features cannot be rebuilt from bars: "
            "the version takes feature rows, not the serving contract's bars"
        )
        log_fitted_model(family, model, data.X)
    else:
        log_served_model(family, model, *made)
    run = active_run()
    days = (str(data.dates.iloc[0])[:10], str(data.dates.iloc[-1])[:10]) if data.dates is not None else ("?", "?")
    tags = version_tags(
        weighing,
        tuned_run=tuned.info.run_id,
        pipeline_run=run.data.tags.get(MLFLOW_PARENT_RUN_ID, ""),
        dataset_digest=lineage.dataset_digest(tuned) or "",
        refit_days=days,
        rows=len(data),
        challenge=challenge,
        holdout_interval=_holdout_interval(tuned, weighing.metric),
    )
    return promote(ticker, run.info.run_id, tags | kept, challenge.alias if challenge else names.CHAMPION)


def recipe(tuned: Run, family: str) -> tuple[Recipe, pd.DataFrame] | None:
    """How the tuned run's features were built, and the bars they were built from, following its
    training data back to the build_features and fetch_data runs (None for a CSV of features)."""
    features_run = lineage.upstream_run(tuned, "training_data")
    if features_run is None or "prices" not in features_run.data.params:
        return None
    params = features_run.data.params
    made = Recipe(family, params["features"], int(params["window"]), float(params["threshold"]))
    return made, load_prices(params["prices"]).frame


def _holdout_interval(tuned: Run, metric: str) -> tuple[float, float] | None:
    """The tuned model's holdout score interval, as its run logged it."""
    found = tuned.data.metrics
    low, high = found.get(names.ci_low(metric)), found.get(names.ci_high(metric))
    return (low, high) if low is not None and high is not None else None


def _best_params(tuned: Run) -> dict[str, Any]:
    prefix = names.BEST_PARAM_PREFIX
    return {k.removeprefix(prefix): v for k, v in tuned.data.params.items() if k.startswith(prefix)}
