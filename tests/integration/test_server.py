"""psystock against a real tracking server started as ``make server`` starts it: proxied
artifacts, outages and restarts (PostgreSQL: ``test_postgresql.py``; basic-auth:
``test_server_auth.py``)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from psystock import names
from psystock.server import UVICORN_OPTIONS
from tests.helpers.runs import Store, mlflow_run, small_pipeline, step_run
from tests.helpers.services import TrackingServer, free_port
from tests.helpers.team_server import IMPATIENT, assert_complete, server_store, start_main, step_runs, wait_for_running

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory):
    server = TrackingServer(tmp_path_factory.mktemp("server")).start()
    yield server
    server.stop()


def test_the_team_server_runs_its_web_workers_on_psystocks_loop_and_none_of_mlflows_genai_job_runners(sqlite_server):
    commands = sqlite_server.commands()
    assert sum("spawn_main" in command for command in commands) == 2, commands  # WORKERS=2, under uvicorn
    assert [c for c in commands if " -m uvicorn " in c and f" {UVICORN_OPTIONS} " in c], commands
    assert [c for c in commands if "huey" in c or "mlflow.server.jobs" in c] == [], commands


def test_a_step_on_the_server_prints_its_runs_links_once(sqlite_server, btc_csv, tmp_path):
    """MLflow prints a run's links wherever a client ends it on a server: the `mlflow` command
    prints them as its run ends, and the step's own end of it must not print them again."""
    store = server_store(sqlite_server, tmp_path)
    result = mlflow_run(store, "fetch_data", {"source": btc_csv, "start": "2020-01-01", "end": "2020-03-31"})
    assert result.returncode == 0, result.output[-3000:]
    assert store.client.get_run(result.run_id).info.status == "FINISHED"
    assert result.stdout.count("View run fetch_data at: ") == 1, result.stdout
    assert result.stdout.count(f"/runs/{result.run_id}") == 1


@pytest.mark.slow
def test_a_pipeline_survives_an_outage_and_a_restart(sqlite_server, btc_csv, tmp_path):
    """Server stopped mid-training: main fails clearly and leaves nothing FINISHED half-done.
    After the restart main completes, reusing what had finished, through a second, brief restart."""
    client = MlflowClient(sqlite_server.url)
    store = server_store(sqlite_server, tmp_path, client)
    params = small_pipeline(btc_csv, max_parallel=3)

    first = start_main(store, params, IMPATIENT)
    wait_for_running(client, store.experiment_id, "train_keras")
    sqlite_server.stop()
    _, err = first.communicate(timeout=300)
    assert first.returncode != 0
    assert f"cannot reach the tracking server at {sqlite_server.url}" in err, err[-3000:]
    sqlite_server.start()
    before = step_runs(client, store.experiment_id)
    assert_complete(client, before)
    finished_before = {r.data.tags[names.TAG_STEP] for r in before if r.info.status == "FINISHED"}
    assert "train_keras" not in finished_before and {"fetch_data", "build_features"} <= finished_before

    second = start_main(store, params)  # MLflow's default retries ride out a brief restart
    wait_for_running(client, store.experiment_id, "compare")
    sqlite_server.stop()
    sqlite_server.start()
    _out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err[-3000:]
    main_run = client.search_runs(
        [store.experiment_id], "tags.`psystock.step` = 'main'", order_by=["attributes.start_time DESC"], max_results=1
    )[0]
    assert main_run.info.status == "FINISHED"
    assert set(main_run.data.tags["psystock.cached_steps"].split(",")) == finished_before
    children = step_runs(client, store.experiment_id, main_run.info.run_id)
    assert all(r.info.status == "FINISHED" for r in children)
    assert_complete(client, step_runs(client, store.experiment_id))
    report_run = next(r for r in children if r.data.tags[names.TAG_STEP] == "report")
    report_path = names.artifact(names.REPORT_DIR, names.REPORT_HTML)
    report = mlflow.artifacts.download_artifacts(
        f"runs:/{report_run.data.tags.get(names.TAG_REUSED_RUN, report_run.info.run_id)}/{report_path}",
        tracking_uri=sqlite_server.url,
        dst_path=str(tmp_path / "report"),
    )
    assert "Leaderboard" in Path(report).read_text()
    # Proxied artifacts: clients only ever saw mlflow-artifacts:/ URIs; the files sit in the server's folder.
    assert main_run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert list((sqlite_server.root / "artifacts").rglob("report.html"))


def test_an_unreachable_tracking_server_is_one_clear_line(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    result = step_run(Store(url, tmp_path, "0"), "fetch_data", {"source": "unused.csv"}, timeout=120, env=IMPATIENT)
    assert result.returncode != 0
    assert result.error_lines() == [
        f"fetch_data: error: cannot reach the tracking server at {url}: is it running? (MLFLOW_TRACKING_URI names it)"
    ], result.stderr[-2000:]
