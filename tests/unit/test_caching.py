from datetime import date
from pathlib import Path

import pytest

from psystock import PsystockError
from psystock.caching import cache_key, code_digest, code_files, normalise, resolved_params, source_identity
from psystock.entry_points import PROJECT_ROOT
from psystock.models import all_families, source_files
from psystock.pipeline import parse_rerun


def test_numbers_are_compared_by_value_not_spelling():
    assert normalise("1e-5", "float") == normalise("0.00001", "float")
    assert normalise("14", "int") == normalise(14, "int") == normalise(" 14", "int")
    assert normalise("0.33", "float") != normalise("0.34", "float")


def test_resolved_params_fill_defaults_from_mlproject():
    given = resolved_params("build_features", {"prices": "runs:/abc/prices"})
    assert given == {"prices": "runs:/abc/prices", "features": "updown", "window": "14", "threshold": repr(0.00001)}
    assert resolved_params("build_features", {"prices": "runs:/abc/prices", "window": "14"}) == given


def test_key_changes_with_each_ingredient():
    params = {"window": "14"}
    base = cache_key("build_features", params, "code", "in")
    assert cache_key("build_features", params, "code", "in") == base
    assert cache_key("build_features", {"window": "15"}, "code", "in") != base
    assert cache_key("build_features", params, "code2", "in") != base
    assert cache_key("build_features", params, "code", "in2") != base
    assert cache_key("compare", params, "code", "in") != base


def test_step_code_follows_imports_but_not_unrelated_modules():
    files = {str(p.relative_to(PROJECT_ROOT)) for p in code_files(PROJECT_ROOT / "steps" / "compare.py")}
    assert {
        "steps/compare.py",
        "psystock/leaderboard.py",
        "psystock/mlflow_io/board.py",
        "psystock/__init__.py",
    } <= files
    assert "psystock/models/keras_net.py" not in files
    # A submodule imported by name is that module alone, not its whole package.
    assert "psystock/mlflow_io/trials.py" not in files
    training = {str(p.relative_to(PROJECT_ROOT)) for p in code_files(PROJECT_ROOT / "steps" / "train_logreg.py")}
    # A family's module counts for the steps that run it, not for every step that trains a family.
    assert {"psystock/models/logreg.py", "psystock/training.py"} <= training
    assert "psystock/models/keras_net.py" not in training


def test_steps_that_load_a_family_by_name_are_keyed_on_its_code_and_what_it_imports():
    from psystock.pipeline import family_code

    for name, info in all_families().items():
        files = {Path(f) for f in family_code(name)}
        assert source_files(info)[0] in files and PROJECT_ROOT / "psystock" / "models" / "__init__.py" in files
    assert PROJECT_ROOT / "psystock" / "models" / "estimators.py" in {Path(f) for f in family_code("forest")}
    assert not any(f.endswith("keras_net.py") for f in family_code("lightgbm"))


def test_editing_a_module_changes_the_digest_of_steps_that_import_it(tmp_path):
    import shutil

    copy = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "mlruns", "*.db"))
    before = {ep: code_digest(ep, copy) for ep in ("fetch_data", "compare", "train_keras")}
    assert before == {ep: code_digest(ep, PROJECT_ROOT) for ep in before}  # content, not location
    leaderboard = copy / "psystock" / "leaderboard.py"
    leaderboard.write_text(leaderboard.read_text() + "\n# edited\n")
    after = {ep: code_digest(ep, copy) for ep in before}
    assert after["compare"] != before["compare"]
    assert after["fetch_data"] == before["fetch_data"]
    assert after["train_keras"] == before["train_keras"]


def test_local_csv_is_identified_by_content(tmp_path):
    csv = tmp_path / "p.csv"
    csv.write_text("a\n1\n")
    first = source_identity(str(csv), date(2020, 1, 1), date(2026, 1, 1))
    csv.write_text("a\n2\n")
    assert source_identity(str(csv), date(2020, 1, 1), date(2026, 1, 1)) != first


def test_yahoo_range_in_the_past_is_cacheable_one_reaching_today_is_keyed_by_day():
    past = source_identity("yahoo", date(2020, 12, 31), date(2026, 1, 1))
    assert past == source_identity("yahoo", date(2020, 12, 31), date(2026, 1, 2))
    live = source_identity("yahoo", date(2026, 1, 1), date(2026, 1, 1))
    assert live != source_identity("yahoo", date(2026, 1, 1), date(2026, 1, 2))


def test_the_price_store_is_keyed_as_the_yahoo_it_stands_in_front_of_but_apart_from_it():
    past = source_identity("store", date(2020, 12, 31), date(2026, 1, 1))
    assert past == source_identity("store", date(2020, 12, 31), date(2026, 1, 2))
    assert past != source_identity("yahoo", date(2020, 12, 31), date(2026, 1, 1))
    live = source_identity("store", date(2026, 1, 1), date(2026, 1, 1))
    assert live != source_identity("store", date(2026, 1, 1), date(2026, 1, 2))


def test_rerun_accepts_step_names_and_all():
    assert parse_rerun("tune, compare") == {"tune", "compare"}
    assert "fetch_data" in parse_rerun("all")
    assert parse_rerun("") == frozenset()
    with pytest.raises(PsystockError, match="rerun names unknown steps tuning"):
        parse_rerun("tuning")


def test_every_step_that_writes_artifacts_has_its_cache_check():
    """A step missing from EXPECTED_ARTIFACTS would be reused with no check of its outputs;
    register is the one step whose result is tags and a registry entry, not artifacts."""
    from psystock.entry_points import load_entry_points
    from psystock.mlflow_io.cache_store import EXPECTED_ARTIFACTS
    from psystock.pipeline import entry_points_of

    steps = set(load_entry_points()) - {"main", "universe"}  # every step a pipeline may run
    assert set(entry_points_of(tuple(all_families()))) <= steps
    assert steps - set(EXPECTED_ARTIFACTS) == {"register"}
    assert set(EXPECTED_ARTIFACTS) <= steps
    assert all(EXPECTED_ARTIFACTS.values())


def test_changes_name_what_differs_and_show_short_values():
    from psystock.caching import describe_changes

    before = {
        "training_data": "runs:/aaa/features",
        "epochs": "1",
        "spark_master": "",
        "seed": "4284",
        "training_runs": "a" * 32 + "," + "b" * 32,
        "compare_run": "a" * 32,
        "model_uri": "models:/m/1",
    }
    now = {
        **before,
        "training_data": "runs:/bbb/features",
        "epochs": "2",
        "spark_master": "local[2]",
        "training_runs": "c" * 32 + "," + "b" * 32,
        "compare_run": "c" * 32,
        "model_uri": "models:/m/2",
    }
    assert describe_changes(before, now, code_changed=True, inputs_changed=False) == [
        "compare_run (another upstream run)",
        "epochs 1 -> 2",
        "model_uri (another model version)",
        "spark_master '' -> local[2]",
        "training_data (another upstream run)",
        "training_runs (other upstream runs)",
        "code",
    ]
    assert describe_changes(before, before, code_changed=False, inputs_changed=True) == ["input data"]
    assert describe_changes(before, before, code_changed=False, inputs_changed=False) == []


def test_summary_gives_each_step_its_time_or_what_reuse_saved():
    from psystock.pipeline import Outcome, StepRunner, StepStatus

    runner = StepRunner("1", "main")
    runner.outcomes = {
        "fetch_data": Outcome("fetch_data", StepStatus.CACHED, "a1", saved=3.21),
        "build_features": Outcome("build_features", StepStatus.CACHED, "b2", saved=2.0),
        "train_keras": Outcome("train_keras", StepStatus.FAILED, "c3", seconds=0.54),
    }
    assert runner.summary().splitlines() == [
        "  fetch_data      cached    run a1  saved 3.2 s",
        "  build_features  cached    run b2  saved 2.0 s",
        "  train_keras     FAILED    run c3  0.5 s",
        "  2 of 3 steps reused earlier runs, saving 5.2 s of step time",
    ]


def test_a_step_that_logs_no_model_does_not_depend_on_the_model_code():
    """Editing a model family must not re-run fetch_data."""
    files = {str(p.relative_to(PROJECT_ROOT)) for p in code_files(PROJECT_ROOT / "steps" / "fetch_data.py")}
    assert "psystock/mlflow_io/outputs.py" in files
    assert not any(f.startswith("psystock/models/") for f in files)
    assert "psystock/protocol.py" not in files


def test_imports_only_for_the_type_checker_are_not_code_a_step_runs(tmp_path):
    (tmp_path / "psystock").mkdir()
    for name in ("__init__", "light", "heavy"):
        (tmp_path / "psystock" / f"{name}.py").write_text("")
    step = tmp_path / "step.py"
    step.write_text(
        "from typing import TYPE_CHECKING\nfrom psystock import light\n"
        "if TYPE_CHECKING:\n    from psystock import heavy\n"
    )
    files = {p.name for p in code_files(step, tmp_path)}
    assert files == {"step.py", "light.py", "__init__.py"}
