"""Every name psystock gives things in MLflow: artifact paths, tags, metric prefixes, URIs.

Nothing else builds a ``runs:/`` or ``models:/`` URI or spells a tag or an
artifact path: renaming one is a change to this file alone. No MLflow import,
so pure code and tests can use the names too.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import PurePosixPath

# --- where fetch_data's bars come from, besides a CSV -----------------------

YAHOO = "yahoo"  # a fresh download (kept in the price store)
STORE = "store"  # the price store if it covers the range, else Yahoo
REMOTE_SOURCES = (YAHOO, STORE)  # the sources that are not a file

# --- artifact paths inside a step run ---------------------------------------

PRICES_DIR = "prices"
PRICES_FILE = "prices.csv"
FEATURES_DIR = "features"
FEATURES_FILE = "training_data.csv"
LABEL_DATES_FILE = "label_dates.csv"
MODEL = "model"
MODEL_SPEC = f"{MODEL}/MLmodel"
PLOTS_DIR = "plots"
METRICS_FILE = "metrics.json"
BASELINES_FILE = "baselines.json"
LEADERBOARD_DIR = "leaderboard"
LEADERBOARD_FILE = "leaderboard.csv"
LEADERBOARD_MARKDOWN = "leaderboard.md"
LEADERBOARD_CHART = "leaderboard.png"
REPORT_DIR = "report"
REPORT_HTML = "report.html"
REPORT_MARKDOWN = "report.md"
REPORT_SUMMARY = "summary.json"  # what a pipeline found, for a universe's report
PREDICTIONS_FILE = "predictions.csv"
TUNING_DIR = "tuning"
TRIALS_FILE = "trials.csv"
TRAINING_LOGS_DIR = "training_logs"
FEATURE_COLUMNS_FILE = "columns.csv"  # in FEATURES_DIR: what each column means
CV_FOLDS = "cv/folds.csv"  # every score on each validation fold
HOLDOUT_PREDICTIONS = "holdout/predictions.csv"  # date, truth, answer, prediction per holdout day
HOLDOUT_DATE = "date"
BACKTEST_RETURNS = "backtest/returns.csv"  # the strategy's and buy-and-hold's days


def artifact(directory: str, filename: str) -> str:
    """The path of ``filename`` inside an artifact directory."""
    return str(PurePosixPath(directory, filename))


def plot(name: str) -> str:
    """The artifact path of a figure (``plots/<name>.png``)."""
    return artifact(PLOTS_DIR, f"{name}.png")


# --- tags -----------------------------------------------------------------

TAG_STEP = "psystock.step"  # the entry point a run belongs to
TAG_PIPELINE = "psystock.pipeline_run_id"
TAG_PROCESS = "psystock.process"  # host:pid that created the run
TAG_FORKED_FROM = "psystock.forked_from"  # host:pid of the server a forked step's process came from
TAG_LAUNCHER = "psystock.launcher"  # how main started the step's process: forkserver or subprocess
FORKSERVER = "forkserver"  # main's launcher: steps forked warm (psystock.forking)
SUBPROCESS = "subprocess"  # main's launcher: a new interpreter per step (MLflow's local backend)
FORKSERVER_BACKEND = "psystock-forkserver"  # its name in the mlflow.project_backend entry-point group
TAG_ENDED_UNSEEN = "psystock.ended_unseen"  # why a RUNNING run was marked KILLED: its process had ended
EXPERIMENT_KIND = "mlflow.experimentKind"  # what the MLflow UI opens an experiment on
MODEL_DEVELOPMENT = "custom_model_development"  # its training runs, not the GenAI overview
TAG_ERROR = "psystock.error"  # a failed run's error line, as the step printed it
TAG_FAMILY = "model_family"
TAG_ROLE = "psystock.role"  # CANDIDATE on the runs that compete in a leaderboard
TAG_HYPERPARAMETERS = "psystock.hyperparameters"  # a model run's hyper-parameters, as `train` takes them
CANDIDATE = "candidate"
BASELINE_FAMILY = "baseline"  # the TAG_FAMILY of every naive baseline's run
TAG_BASELINE = "psystock.baseline"  # which naive baseline a baseline run is
TAG_TRIAL = "trial"
TRIAL_STEP = "tune_trial"
TAG_TRIAL_ERROR = "error"

TAG_LIMIT = 5000  # characters a tag value may hold on every tracking store

# fetch_data
TAG_TICKER = "ticker"
TAG_FIRST_DATE = "first_date"
TAG_LAST_DATE = "last_date"
TAG_RANGE_WARNINGS = "range_warnings"  # how many lines TAG_DATA_WARNINGS holds
TAG_DATA_WARNINGS = "psystock.data_warnings"  # what reading the data changed or noticed, one per line
TAG_DROPPED_ROWS = "psystock.dropped_null_rows"  # how many rows without a value were left out
TAG_DROPPED_DAYS = "psystock.dropped_null_days"  # their days, comma-separated
TAG_REVERSED = "psystock.reversed_dates"  # "true" when the source listed the newest day first
TAG_DATASET_DIGEST = "psystock.dataset_digest"
TAG_SERVED_BY = "psystock.prices_served_by"  # fetch_data: store, yahoo or csv
TAG_STORED_BARS = "psystock.price_store_bars"  # fetch_data: sha256 of the bars' file in the price store
# build_features
TAG_FIRST_LABEL_DATE = "first_label_date"
TAG_LAST_LABEL_DATE = "last_label_date"
# model runs: how the split was made
TAG_N_TRAIN = "n_train"
TAG_N_TEST = "n_test"
TAG_TRAIN_FIRST_DATE = "train_first_date"
TAG_TRAIN_LAST_DATE = "train_last_date"
TAG_TEST_FIRST_DATE = "test_first_date"
TAG_TEST_LAST_DATE = "test_last_date"
# compare
TAG_WINNER_FAMILY = "psystock.winner_family"
TAG_WINNER_RUN = "psystock.winner_run_id"
TAG_BEST_BASELINE = "psystock.best_baseline"  # its run name
TAG_BEST_BASELINE_RUN = "psystock.best_baseline_run_id"
TAG_RANKED_BY = "psystock.ranked_by"  # the run metric compare ranked by
TAG_BEATS_BASELINES = "psystock.beats_baselines"
# tune
TAG_BEST_TRIAL_RUN = "best_trial_run_id"
TAG_STOPPED_EARLY = "stopped_early"
TAG_TRIALS_BACKEND = "psystock.trials_backend"
BEST_PARAM_PREFIX = "best_"
# register
TAG_DECISION = "psystock.decision"
TAG_REASON = "psystock.reason"
TAG_REGISTERED_MODEL = "psystock.registered_model"
TAG_HOLDOUT_RANGE = "psystock.holdout_range"  # first..last holdout day the gate judged on
TAG_GATE_BASELINE = "psystock.gate_baseline"  # the baseline the model beat by the least
# report
TAG_VERDICT = "psystock.verdict"  # the report's first sentence
TAG_NOTE = "mlflow.note.content"  # a run's description in the MLflow UI


def pipeline_note(verdict: str, report_run_id: str) -> str:
    """main's description in the UI: what the pipeline found, and where its report is."""
    report = run_uri(report_run_id, artifact(REPORT_DIR, REPORT_HTML))
    return f"{verdict}\n\nThe report: {report}"


REPORT_BACKTEST = "backtest.csv"  # in REPORT_DIR: the backtest table
# predict
TAG_PREDICTED_DAY = "predicted_day"
TAG_DIRECTION = "direction"
TAG_MODEL_URI = "model_uri"
# main
TAG_STEP_RUNS = "psystock.step_runs"
TAG_CACHED_STEPS = "psystock.cached_steps"
TAG_REGISTRY_DECISION = "psystock.registry_decision"
TAG_CHAMPION = "psystock.champion"
NO_CHAMPION = "none"
# universe
TAG_PIPELINE_RUNS = "psystock.pipeline_runs"  # ticker -> its main run (a reused one when cached)
TAG_FAILED_TICKERS = "psystock.failed_tickers"  # comma-separated
UNIVERSE_DIR = "universe"  # the cross-ticker report: REPORT_HTML, REPORT_MARKDOWN and these
UNIVERSE_TICKERS = "tickers.csv"  # one row per ticker
UNIVERSE_SCORES = "scores.csv"  # ticker by candidate on the selection score
UNIVERSE_WINS = "wins.csv"  # how often each family was chosen and registered
HEAT_MAP = "heat_map.png"
# the step cache
TAG_CACHE_KEY = "psystock.cache_key"
CACHE_TAG_PREFIX = "psystock.cache."  # + key: a tag *name* per key, which MLflow indexes
TAG_CODE_DIGEST = "psystock.code_digest"
TAG_INPUTS = "psystock.inputs"
TAG_CACHED_STEP = "psystock.cached_step"
TAG_REUSED_RUN = "psystock.reused_run_id"

# --- metrics one step logs and another reads ---------------------------------

PRIMARY_METRIC = "f1_experiment_score"  # the reference's name for F1 on the test split
# Every step run's: the CPU seconds (user and system) its process spent, from its start (a forked
# step's from its fork) to the end of its work; the benchmarks read where a pipeline's CPU goes.
CPU_SECONDS = "cpu_seconds"


def best_metric(metric: str) -> str:
    """compare: the best model's score."""
    return f"best_{metric}"


def best_baseline_metric(metric: str) -> str:
    """compare: the best baseline's score, which register's gate reads."""
    return f"best_baseline_{metric}"


def tuned_metric(metric: str) -> str:
    """main: the tuned model's score, copied from its tune step."""
    return f"tuned_{metric}"


def cv_mean(score: str) -> str:
    """A candidate's mean score over the validation folds of the development period."""
    return f"cv_{score}_mean"


def cv_std(score: str) -> str:
    return f"cv_{score}_std"


def cv_fold(score: str, fold: int) -> str:
    return f"cv_{score}_fold_{fold}"


def test_metric(score: str) -> str:
    """A candidate's score on the holdout (the test split)."""
    return f"test_{score}"


def ci_low(score: str) -> str:
    """The low end of the holdout score's bootstrap interval."""
    return f"test_{score}_ci_low"


def ci_high(score: str) -> str:
    return f"test_{score}_ci_high"


def best_cv(score: str) -> str:
    """tune: the best trial's mean CV score."""
    return f"best_cv_{score}"


def gate_candidate_metric(score: str) -> str:
    """register: the tuned model's holdout score the gate weighed."""
    return f"candidate_{score}"


def gate_baseline_metric(score: str) -> str:
    """register: the best baseline's holdout score the gate weighed."""
    return f"baseline_{score}"


BLOCK_LENGTH = "block_length"  # the bootstrap's mean block length, in days, as used
BACKTEST = "backtest"  # prefix of a strategy's statistics: backtest_sharpe, ...
BUY_AND_HOLD = "buy_and_hold"  # prefix of buy-and-hold's over the same days
BACKTEST_SHARPE_CI_LOW = "backtest_sharpe_ci_low"
BACKTEST_SHARPE_CI_HIGH = "backtest_sharpe_ci_high"
# register: the paired bootstrap of the tuned model against the best baseline on the holdout
IMPROVEMENT = "improvement"
IMPROVEMENT_CI_LOW = "improvement_ci_low"
IMPROVEMENT_CI_HIGH = "improvement_ci_high"
P_VALUE = "p_value"


def against(baseline: str, what: str) -> str:
    """register: one baseline's comparison (``improvement_ci_low_vs_baseline_persistence``)."""
    return f"{what}_vs_{baseline}"


# --- the model registry ----------------------------------------------------

CHAMPION = "champion"  # the alias of the version predict and serving use
CHALLENGER = "challenger"  # the alias of a version that beat the baselines but not the champion
INCUMBENT = "champion"  # register: the comparison with the champion, as ``<what>_vs_champion``
UNSEEN_DAYS = "unseen_days"  # register: the candidate's holdout days after the champion's refit range
TAG_INCUMBENT = "psystock.incumbent"  # register: the champion's version the candidate was weighed against
TAG_CHALLENGE = "psystock.challenge"  # register: how the candidate fared against the champion, in numbers
# Tags of a registered version.
VERSION_TAG_DATASET_DIGEST = "dataset_digest"
VERSION_TAG_PIPELINE_RUN = "pipeline_run_id"
VERSION_TAG_TUNED_RUN = "tuned_run_id"
VERSION_TAG_BEST_BASELINE = "best_baseline"
VERSION_TAG_METRIC = "metric"  # the selection metric the gate judged by
VERSION_TAG_HOLDOUT = "holdout"  # first..last day of the holdout it was judged on
VERSION_TAG_EVIDENCE = "holdout_evidence"  # the gate's reason, with its numbers
VERSION_TAG_REFIT_RANGE = "refit_range"  # first..last label day the registered model was fit on
VERSION_TAG_REFIT_ROWS = "refit_rows"
VERSION_TAG_CHALLENGE = "against_champion"  # how it fared against the champion it met, in numbers
VERSION_TAG_CONTRACT = "contract"  # the serving contract it keeps (psystock.contract.CONTRACT), if any
VERSION_TAG_HOLDOUT_CI = "holdout_interval"  # "low..high": the holdout score's interval, monitor's yardstick


class Decision(StrEnum):
    """What the registry gate decided (tag ``psystock.decision``)."""

    REGISTERED = "registered"  # and the champion: it beat the baselines, and the champion it replaces
    CHALLENGER = "challenger"  # registered beside the champion: it beat the baselines, not the champion
    REFUSED = "refused"


class Health(StrEnum):
    """How a champion does on the days after its refit range (tag ``psystock.health``, monitor)."""

    OK = "ok"
    DEGRADED = "degraded"
    TOO_FEW_DAYS = "too_few_days"


TAG_HEALTH = "psystock.health"
TAG_HEALTH_REASON = "psystock.health_reason"
TAG_MONITORED_MODEL = "psystock.monitored_model"  # monitor: the version it watched
MONITOR_DAYS = "monitor/days.csv"  # monitor: a row per day scored
MONITOR_RUNNING = "monitor/running.csv"  # monitor: the figures as they stood after each day


def live(what: str) -> str:
    """monitor: a figure of the days after the refit range (``live_mcc``, ``live_hit_rate``)."""
    return f"live_{what}"


def model_name(ticker: str) -> str:
    """The registered model of a ticker: ``psystock-<ticker>``."""
    return f"psystock-{ticker}"


# --- URIs -------------------------------------------------------------------

RUNS_SCHEME = "runs:/"
MODELS_SCHEME = "models:/"


def run_uri(run_id: str, artifact_path: str) -> str:
    """The ``runs:/`` URI of an artifact of a run."""
    return f"{RUNS_SCHEME}{run_id}/{artifact_path}"


def run_id_from_uri(uri: str) -> str | None:
    """The run id in a ``runs:/<id>/...`` URI, or None for anything else."""
    if not uri.startswith(RUNS_SCHEME):
        return None
    return uri[len(RUNS_SCHEME) :].strip("/").split("/", 1)[0] or None


def run_id_of(reference: str) -> str:
    """The run a parameter names: a ``runs:/`` URI or a bare run id."""
    return run_id_from_uri(reference) or reference


def model_version_uri(name: str, version: str | int) -> str:
    """``models:/<name>/<version>``: one fixed version."""
    return f"{MODELS_SCHEME}{name}/{version}"


def model_alias_uri(name: str, alias: str = CHAMPION) -> str:
    """``models:/<name>@<alias>``: whichever version holds the alias when it is loaded."""
    return f"{MODELS_SCHEME}{name}@{alias}"


def is_uri(location: str) -> bool:
    """Whether a step input names an MLflow or remote location rather than a local path."""
    return "://" in location or location.startswith((RUNS_SCHEME, MODELS_SCHEME))
