"""MLproject is the one source of parameters: every one must reach its step."""

import re

import pytest

from psystock import cli
from psystock.models import FAMILY_NAMES, get_family

ENTRY_POINTS = cli.load_entry_points()


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
def test_every_declared_parameter_reaches_the_command(entry_point):
    spec = ENTRY_POINTS[entry_point]
    command = spec["command"]
    placeholders = re.findall(r"--(\w+) \{(\w+)\}", command)
    assert all(option == name for option, name in placeholders), "option and placeholder names differ"
    assert sorted(name for _, name in placeholders) == sorted(spec.get("parameters", {}))
    assert command.startswith(f"python -m steps.{entry_point} ")


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
def test_step_parser_accepts_exactly_the_declared_parameters(entry_point):
    params = ENTRY_POINTS[entry_point].get("parameters", {})
    argv = []
    for name, spec in params.items():
        argv += [f"--{name}", str(spec.get("default", "x"))]
    parsed = cli.parse_step_args(entry_point, argv)
    assert set(parsed.values) == set(params)
    for name, spec in params.items():
        expected = {"int": int, "float": float}.get(spec.get("type"), str)
        assert isinstance(parsed.values[name], expected)


def test_step_parser_rejects_a_value_of_the_wrong_type(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.parse_step_args("build_features", ["--prices", "p.csv", "--window", "fourteen"])
    assert stopped.value.code == 2
    assert "parameter window must be int, got 'fourteen'" in capsys.readouterr().err


def test_step_parser_requires_parameters_without_default(capsys):
    with pytest.raises(SystemExit):
        cli.parse_step_args("build_features", [])
    assert "--prices" in capsys.readouterr().err


def test_raw_values_keep_the_spelling_given():
    parsed = cli.parse_step_args("build_features", ["--prices", "p.csv", "--threshold", "1e-5"])
    assert parsed.raw["threshold"] == "1e-5" and parsed.threshold == pytest.approx(0.00001)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_each_family_has_a_train_entry_point_declaring_its_parameters(family):
    fam = get_family(family)
    declared = ENTRY_POINTS[fam.entry_point]["parameters"]
    assert set(fam.params) <= set(declared)
    assert {"training_data", "split", "test_size", "seed"} <= set(declared)


def test_main_forwards_its_parameters_to_the_steps():
    """Every parameter of main other than the driver's own is a parameter of some step."""
    main = set(ENTRY_POINTS["main"]["parameters"])
    steps = set().union(*(set(spec.get("parameters", {})) for name, spec in ENTRY_POINTS.items() if name != "main"))
    driver_only = {"env_manager", "use_cache", "rerun", "max_parallel"}
    renamed = {"keras_epochs": ("train_keras", "epochs"), "tune_timeout": ("tune", "timeout"),
               "tune_parallelism": ("tune", "parallelism")}
    assert main - driver_only - set(renamed) <= steps
    for step, name in renamed.values():
        assert name in ENTRY_POINTS[step]["parameters"]


def test_reference_defaults():
    fetch = ENTRY_POINTS["fetch_data"]["parameters"]
    assert (fetch["ticker"]["default"], fetch["start"]["default"], fetch["end"]["default"]) == (
        "BTC-USD", "2014-01-01", "2020-12-31")
    assert ENTRY_POINTS["build_features"]["parameters"]["window"]["default"] == 14
    assert ENTRY_POINTS["build_features"]["parameters"]["threshold"]["default"] == 0.00001
    train = ENTRY_POINTS["train_logreg"]["parameters"]
    assert (train["test_size"]["default"], train["seed"]["default"]) == (0.33, 4284)
    keras = ENTRY_POINTS["train_keras"]["parameters"]
    assert (keras["units"]["default"], keras["epochs"]["default"], keras["learning_rate"]["default"],
            keras["validation_split"]["default"]) == (36, 20, 0.001, 0.05)
    assert ENTRY_POINTS["tune"]["parameters"]["max_evals"]["default"] == 10
