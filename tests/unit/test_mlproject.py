"""MLproject and the steps' typed arguments declare every parameter alike, and each reaches its step."""

from __future__ import annotations

import dataclasses
import importlib
import re
from enum import StrEnum

import pytest

from psystock import entry_points
from psystock.entry_points import PYTHON_TYPES, StepArgs, field_types, parse_args
from psystock.models import FAMILY_NAMES, get_family
from psystock.pipeline import DRIVER_ONLY, RENAMED, SUPERSEDED, forwarded
from psystock.protocol import ScoringArgs

ENTRY_POINTS = entry_points.load_entry_points()
DRIVERS = ("main", "universe")  # they take every step's parameters, some renamed (RENAMED)


def args_type(entry_point: str) -> type[StepArgs]:
    """The arguments dataclass a step module declares (``steps.<entry point>.Args``)."""
    found: type[StepArgs] = importlib.import_module(f"steps.{entry_point}").Args
    return found


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
def test_every_declared_parameter_reaches_the_command(entry_point):
    spec = ENTRY_POINTS[entry_point]
    command = spec["command"]
    placeholders = re.findall(r"--(\w+) \{(\w+)\}", command)
    assert all(option == name for option, name in placeholders), "option and placeholder names differ"
    assert sorted(name for _, name in placeholders) == sorted(spec.get("parameters", {}))
    assert command.startswith(f"python -m steps.{entry_point} ")


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
def test_each_step_declares_its_parameters_as_mlproject_does(entry_point):
    """Name, type and default of every field of the step's dataclass equal MLproject's declaration."""
    declared = ENTRY_POINTS[entry_point]["parameters"]
    cls = args_type(entry_point)
    assert cls.entry_point == entry_point
    fields = {f.name: f for f in dataclasses.fields(cls)}
    assert set(fields) == set(declared)
    for name, kind in field_types(cls).items():
        spec = declared[name]
        if isinstance(kind, type) and issubclass(kind, StrEnum):
            assert spec.get("type") == "string", name
        else:
            assert PYTHON_TYPES[spec.get("type", "string")] is kind, name
        field = fields[name]
        if "default" not in spec:
            assert field.default is dataclasses.MISSING, f"{name} is required in MLproject"
        else:
            default = entry_points.convert(str(spec["default"]), kind)
            assert field.default == default and type(field.default) is type(default), name


# Same name, deliberately different declarations: build_features needs prices; predict
# may go without and then reads the latest bars from its source.
DISTINCT = {"prices"}


def test_a_parameter_used_by_several_entry_points_is_declared_once():
    """Same name (or a name main renames), same YAML declaration: an alias of one of shared_parameters."""
    family_params = {(get_family(f).entry_point, p) for f in FAMILY_NAMES for p in get_family(f).param_names}
    seen: dict[tuple[str, str], list[tuple[str, dict]]] = {}
    for entry_point, spec in ENTRY_POINTS.items():
        for name, declaration in spec["parameters"].items():
            step, step_name = RENAMED.get(name, (entry_point, name)) if entry_point in DRIVERS else (entry_point, name)
            # A family's hyper-parameter is its own: keras's learning_rate is not xgboost's.
            scope = step if (step, step_name) in family_params else ""
            seen.setdefault((scope, step_name), []).append((entry_point, declaration))
    for (_, name), uses in seen.items():
        first = uses[0][1]
        if name in DISTINCT:
            assert len({d["type"] for _, d in uses}) == 1, name
        elif len(uses) > 1:
            assert all(declaration is first for _, declaration in uses), f"{name} is declared more than once"


def test_main_forwards_every_parameter_of_its_own_to_a_step():
    main = dict.fromkeys(ENTRY_POINTS["main"]["parameters"], "x")
    reached = set()
    for entry_point in ENTRY_POINTS:
        if entry_point not in DRIVERS:
            for name in forwarded(entry_point, main):
                step_name = next((m for m, (s, n) in RENAMED.items() if s == entry_point and n == name), name)
                reached.add(step_name)
    assert set(main) - set(DRIVER_ONLY) == reached
    for step, name in RENAMED.values():
        assert name in ENTRY_POINTS[step]["parameters"]
    for step, name in SUPERSEDED:
        assert name in ENTRY_POINTS[step]["parameters"]


def test_forwarding_renames_and_leaves_out_what_a_step_does_not_take():
    main = {"keras_epochs": "3", "seed": "7", "source": "prices.csv", "env_manager": "uv", "ticker": "SPY"}
    assert forwarded("train_keras", main) == {"epochs": "3", "seed": "7"}
    assert forwarded("fetch_data", main) == {"source": "prices.csv", "ticker": "SPY"}
    assert forwarded("predict", main) == {"ticker": "SPY"}  # reads fetch_data's prices, not the source


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_each_family_trains_with_exactly_its_parameters_and_the_split(family):
    fam = get_family(family)
    declared = set(ENTRY_POINTS[fam.entry_point]["parameters"])
    shared = {f.name for f in dataclasses.fields(ScoringArgs)}
    assert declared == shared | set(fam.param_names)
    assert dataclasses.asdict(fam.defaults()) == {
        name: entry_points.default_of(fam.entry_point, name) for name in fam.param_names
    }


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
def test_step_parser_accepts_exactly_the_declared_parameters(entry_point):
    params = ENTRY_POINTS[entry_point].get("parameters", {})
    argv = []
    for name, spec in params.items():
        argv += [f"--{name}", str(spec.get("default", "x"))]
    parsed, raw = parse_args(args_type(entry_point), argv)
    assert set(raw) == set(params)
    for name, kind in field_types(type(parsed)).items():
        assert isinstance(getattr(parsed, name), kind)


def test_step_parser_rejects_a_value_of_the_wrong_type(capsys):
    with pytest.raises(SystemExit) as stopped:
        parse_args(args_type("build_features"), ["--prices", "p.csv", "--window", "fourteen"])
    assert stopped.value.code == 2
    assert "parameter window must be int, got 'fourteen'" in capsys.readouterr().err


def test_step_parser_names_the_choices_of_a_parameter_that_has_them(capsys):
    with pytest.raises(SystemExit):
        parse_args(args_type("baselines"), ["--training_data", "t.csv", "--split", "shuffled"])
    assert "parameter split must be one of chronological, random, got 'shuffled'" in capsys.readouterr().err


def test_step_parser_requires_parameters_without_default(capsys):
    with pytest.raises(SystemExit):
        parse_args(args_type("build_features"), [])
    assert "--prices" in capsys.readouterr().err


def test_raw_values_keep_the_spelling_given():
    from steps.build_features import Args

    parsed, raw = parse_args(Args, ["--prices", "p.csv", "--threshold", "1e-5"])
    assert raw["threshold"] == "1e-5" and parsed.threshold == pytest.approx(0.00001)


def test_a_dataclass_that_drifts_from_mlproject_is_refused_at_parse_time():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Drifted(StepArgs):
        entry_point = "build_features"
        prices: str
        window: int = 14

    with pytest.raises(RuntimeError, match="declare different parameters: \\['features', 'threshold'\\]"):
        parse_args(Drifted, ["--prices", "p.csv"])


def test_parameters_format_back_to_what_parses_to_the_same_values():
    cls = args_type("main")
    parsed, _ = parse_args(cls, ["--threshold", "1e-5", "--test_size", "0.25", "--split", "random"])
    again, _ = parse_args(
        cls, [arg for name, value in entry_points.to_params(parsed).items() for arg in (f"--{name}", value)]
    )
    assert again == parsed


def test_reference_defaults():
    fetch = ENTRY_POINTS["fetch_data"]["parameters"]
    assert (fetch["ticker"]["default"], fetch["start"]["default"], fetch["end"]["default"]) == (
        "BTC-USD",
        "2014-01-01",
        "2020-12-31",
    )
    assert ENTRY_POINTS["build_features"]["parameters"]["window"]["default"] == 14
    assert ENTRY_POINTS["build_features"]["parameters"]["threshold"]["default"] == 0.00001
    train = ENTRY_POINTS["train_logreg"]["parameters"]
    assert (train["test_size"]["default"], train["seed"]["default"]) == (0.33, 4284)
    keras = ENTRY_POINTS["train_keras"]["parameters"]
    assert (
        keras["units"]["default"],
        keras["epochs"]["default"],
        keras["learning_rate"]["default"],
        keras["validation_split"]["default"],
        keras["layers"]["default"],
        keras["dropout"]["default"],
    ) == (36, 20, 0.001, 0.05, 1, 0.0)
    assert ENTRY_POINTS["tune"]["parameters"]["max_evals"]["default"] == 10
