"""Bad input: one readable error line, a non-zero exit and a FAILED run.

Most cases run the step module as MLflow's command line would (``step_run``);
the end-to-end cases go through the real ``mlflow run``.
"""

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.helpers.runs import mlflow_run, step_run

pytestmark = pytest.mark.integration


def bars(n=40, start="2020-01-01"):
    rng = np.random.default_rng(0)
    opens = 100 + rng.random(n)
    closes = opens * (1 + rng.normal(0, 0.01, n))
    return pd.DataFrame(
        {
            "Date": pd.date_range(start, periods=n, freq="D").strftime("%Y-%m-%d"),
            "Open": opens,
            "High": np.maximum(opens, closes) + 1,
            "Low": np.minimum(opens, closes) - 1,
            "Close": closes,
            "Adj Close": closes,
            "Volume": 1000,
        }
    )


def write(frame, path):
    frame.to_csv(path, index=False)
    return path


def reference_table(path, n=60, window=14):
    """A training table in the reference layout, with no dates beside it."""
    rng = np.random.default_rng(1)
    pd.DataFrame(rng.integers(0, 2, (n, window + 1)), columns=[str(i) for i in range(window + 1)]).to_csv(
        path, index=False
    )
    return path


def assert_fails_clearly(result, message):
    assert result.returncode != 0
    errors = result.error_lines()
    assert len(errors) == 1, result.stderr[-3000:]
    assert message in errors[0], errors[0]
    assert "Traceback" not in result.stderr.split(errors[0])[0][-2000:]
    assert mlflow.get_run(result.run_id).info.status == "FAILED"


def unsorted(frame):
    return frame.iloc[[0, 2, 1, *range(3, len(frame))]]


def duplicated(frame):
    out = frame.copy()
    out.loc[5, "Date"] = out.loc[4, "Date"]
    return out


def nan_price(frame):
    out = frame.copy()
    out.loc[7, "Close"] = np.nan
    return out


def text_price(frame):
    out = frame.copy().astype({"High": object})
    out.loc[3, "High"] = "twelve"
    return out


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (unsorted, "fetch_data: error: dates are not in ascending order: 2020-01-02 follows 2020-01-03"),
        (duplicated, "fetch_data: error: 1 duplicated dates, first 2020-01-05"),
        (lambda f: f.drop(columns=["Close"]), "fetch_data: error: price data lacks columns Close"),
        (nan_price, "fetch_data: error: Close is missing on 1 days, first 2020-01-08"),
        (text_price, "fetch_data: error: High has 1 non-numeric values (2020-01-04: 'twelve')"),
    ],
    ids=["unsorted", "duplicated", "missing-column", "nan-price", "text-price"],
)
def test_fetch_rejects_bad_csv(module_store, tmp_path, corrupt, message):
    path = write(corrupt(bars()), tmp_path / "bad.csv")
    result = step_run(module_store, "fetch_data", {"source": path, "start": "2020-01-01", "end": "2020-12-31"})
    assert_fails_clearly(result, message)


# yfinance's Ticker.history, told to raise (as psystock tells it), for a symbol Yahoo does not know
# and for a machine without a network: the exceptions yfinance 1.x raises.
UNKNOWN_TO_YAHOO = (
    "import yfinance\nfrom yfinance.exceptions import YFTzMissingError\n"
    "def history(self, **kwargs):\n    raise YFTzMissingError(self.ticker)\n"
    "yfinance.Ticker.history = history"
)
OFFLINE = (
    "import yfinance\nfrom curl_cffi.requests.exceptions import DNSError\n"
    "def history(self, **kwargs):\n"
    "    raise DNSError('Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com. "
    "See https://curl.se/libcurl/c/libcurl-errors.html first for more details.', 6)\n"
    "yfinance.Ticker.history = history"
)


def test_an_unknown_ticker_fails_the_run_clearly(module_store):
    result = step_run(
        module_store,
        "fetch_data",
        {"ticker": "NOPE-USD", "start": "2020-01-01", "end": "2020-12-31"},
        patch=UNKNOWN_TO_YAHOO,
    )
    assert_fails_clearly(
        result,
        "fetch_data: error: Yahoo does not know the ticker 'NOPE-USD' (no such symbol, or delisted): "
        "check its spelling on finance.yahoo.com",
    )
    assert not mlflow.MlflowClient().list_artifacts(result.run_id)


def test_no_network_is_told_apart_from_an_unknown_ticker(module_store):
    """Asking for Yahoo itself, even for a range the price store holds, is a download."""
    result = step_run(
        module_store, "fetch_data", {"start": "2020-01-01", "end": "2020-12-31", "source": "yahoo"}, patch=OFFLINE
    )
    assert_fails_clearly(
        result,
        "fetch_data: error: Yahoo Finance cannot be reached (Could not resolve host: query2.finance.yahoo.com): "
        "check the network connection (or HTTPS_PROXY), or run offline on a CSV in Yahoo's layout: "
        "-P source=prices.csv (make run DATA=prices.csv)",
    )


def test_offline_a_range_beyond_the_price_store_says_what_it_holds(module_store):
    from psystock.price_store import data_dir

    result = step_run(module_store, "fetch_data", {"start": "2020-06-01", "end": "2021-06-30"}, patch=OFFLINE)
    assert_fails_clearly(
        result,
        "fetch_data: error: Yahoo Finance cannot be reached (Could not resolve host: query2.finance.yahoo.com): "
        "check the network connection (or HTTPS_PROXY), or run offline on a CSV in Yahoo's layout: "
        "-P source=prices.csv (make run DATA=prices.csv); the price store at "
        f"{data_dir()} holds only BTC-USD 2014-01-01..2020-12-31 (committed tests/fixtures/BTC-USD.csv)",
    )


def test_a_price_store_that_cannot_be_written_fails_the_run_clearly(module_store, tmp_path):
    not_a_folder = write(bars(), tmp_path / "data")
    result = step_run(module_store, "fetch_data", {}, env={"PSYSTOCK_DATA_DIR": str(not_a_folder)}, patch=OFFLINE)
    assert_fails_clearly(
        result,
        f"fetch_data: error: the price store at {not_a_folder} cannot keep bars "
        f"(Not a directory: {not_a_folder / 'bars'}); set PSYSTOCK_DATA_DIR to a directory you can write",
    )


@pytest.mark.parametrize("ticker", ["BTC USD", "SPY'; --", "../etc", "A" * 21, ""])
def test_a_ticker_that_is_no_symbol_is_refused(module_store, tmp_path, ticker):
    path = write(bars(), tmp_path / "ok.csv")
    result = step_run(module_store, "fetch_data", {"ticker": ticker, "source": path})
    assert_fails_clearly(result, f"fetch_data: error: ticker {ticker!r} is not a ticker symbol")


def test_null_rows_are_dropped_and_recorded_on_the_run(module_store, tmp_path):
    frame = bars().astype(object)
    frame.loc[[10, 11], ["Open", "High", "Low", "Close", "Adj Close", "Volume"]] = "null"
    path = write(frame, tmp_path / "nulls.csv")
    result = step_run(module_store, "fetch_data", {"source": path, "start": "2020-01-01", "end": "2020-12-31"})
    assert result.returncode == 0, result.stderr[-2000:]
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["psystock.dropped_null_rows"] == "2"
    assert run.data.tags["psystock.dropped_null_days"] == "2020-01-11,2020-01-12"
    assert run.data.metrics["rows"] == 38
    warning = "dropped 2 rows without prices (Yahoo's null rows for days it lacks): 2020-01-11, 2020-01-12"
    assert warning in result.stderr and run.data.tags["psystock.data_warnings"] == warning


def test_a_gap_of_years_fails_the_run_clearly(module_store, tmp_path):
    path = write(pd.concat([bars(30, "2015-01-01"), bars(30, "2018-01-01")], ignore_index=True), tmp_path / "gap.csv")
    result = step_run(module_store, "fetch_data", {"source": path, "start": "2015-01-01", "end": "2018-12-31"})
    assert_fails_clearly(
        result, "fetch_data: error: 1 gaps of more than 31 days in the prices, the first from 2015-01-30 to 2018-01-01"
    )


def test_bad_csv_through_mlflow_run(module_store, tmp_path):
    path = write(unsorted(bars()), tmp_path / "bad.csv")
    result = mlflow_run(module_store, "fetch_data", {"source": path, "start": "2020-01-01", "end": "2020-12-31"})
    assert_fails_clearly(result, "fetch_data: error: dates are not in ascending order")


def test_fetch_rejects_a_range_too_short_for_one_window(module_store, tmp_path):
    path = write(bars(40), tmp_path / "ok.csv")
    result = step_run(module_store, "fetch_data", {"source": path, "start": "2020-02-01", "end": "2020-03-31"})
    assert_fails_clearly(result, "9 rows between 2020-02-01 and 2020-03-31")


def test_build_features_rejects_window_below_one(module_store, tmp_path):
    path = write(bars(), tmp_path / "ok.csv")
    result = step_run(module_store, "build_features", {"prices": path, "window": 0})
    assert_fails_clearly(result, "build_features: error: window must be at least 1, got 0")


def test_build_features_rejects_a_missing_run(module_store):
    result = step_run(module_store, "build_features", {"prices": "runs:/0123456789abcdef0123456789abcdef/prices"})
    assert_fails_clearly(result, "build_features: error: prices: cannot read runs:/0123456789abcdef0123456789abcdef")


@pytest.mark.parametrize("test_size", [0, 1.5])
def test_training_rejects_test_size_outside_unit_interval(module_store, tmp_path, test_size):
    path = reference_table(tmp_path / "training_data.csv")
    result = step_run(module_store, "train_logreg", {"training_data": path, "test_size": test_size})
    assert_fails_clearly(
        result, f"train_logreg: error: test_size must be between 0 and 1 (exclusive), got {float(test_size)}"
    )


def test_training_accepts_a_reference_table_without_dates(module_store, tmp_path):
    path = reference_table(tmp_path / "training_data.csv")
    result = mlflow_run(module_store, "train_logreg", {"training_data": path, "split": "random"})
    assert result.returncode == 0, result.stderr[-2000:]
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["n_test"] == "20"  # ceil(0.33 * 60)


def test_tune_rejects_an_unknown_family(module_store, tmp_path):
    path = reference_table(tmp_path / "training_data.csv")
    result = step_run(module_store, "tune", {"training_data": path, "family": "svm"})
    assert_fails_clearly(result, "tune: error: unknown model family 'svm'; choose one of logreg, xgboost, keras")


def test_tune_rejects_negative_max_evals(module_store, tmp_path):
    path = reference_table(tmp_path / "training_data.csv")
    result = step_run(module_store, "tune", {"training_data": path, "max_evals": -1})
    assert_fails_clearly(result, "tune: error: max_evals must be at least 1, got -1")


def test_main_rejects_bad_parameters_before_running_any_step(module_store):
    result = mlflow_run(module_store, "main", {"source": "/nonexistent.csv", "test_size": 2})
    assert_fails_clearly(result, "main: error: test_size must be between 0 and 1")
    steps = mlflow.MlflowClient().search_runs(
        [module_store.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert steps == []  # no step was launched


def test_a_value_of_the_wrong_type_is_refused(module_store, tmp_path):
    path = write(bars(), tmp_path / "ok.csv")
    result = mlflow_run(module_store, "build_features", {"prices": path, "window": "two"})
    assert result.returncode != 0
    assert "parameter window must be int, got 'two'" in result.stderr
    assert mlflow.get_run(result.run_id).info.status == "FAILED"


def test_predict_refuses_prices_and_a_source_together(module_store, tmp_path):
    path = write(bars(), tmp_path / "ok.csv")
    result = step_run(module_store, "predict", {"model_uri": "models:/psystock-X/1", "prices": path, "source": path})
    assert_fails_clearly(result, "predict: error: give prices or source, not both")


def test_compare_refuses_runs_and_an_experiment_together(module_store):
    result = step_run(module_store, "compare", {"training_runs": "0" * 32, "experiment": "other"})
    assert_fails_clearly(result, "compare: error: give training_runs or experiment, not both")
