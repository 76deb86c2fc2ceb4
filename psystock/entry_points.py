"""MLproject's entry points as typed Python: one frozen dataclass of arguments per step.

``MLproject`` declares every parameter (name, type, default) and is what
``mlflow run`` reads. Each step declares the same parameters once more, as the
fields of a :class:`StepArgs` subclass, so that the type checker sees them;
:func:`parse_args` builds the step's command line from ``MLproject`` and
fills that dataclass, and ``tests/unit/test_mlproject.py`` fails on any
difference in name, type or default between the two.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import typing
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MLPROJECT = PROJECT_ROOT / "MLproject"

# libyaml's loader when PyYAML was built with it: ten times faster, and main reads
# MLproject once per step it launches.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# MLproject's parameter types and the Python types a step receives them as.
PYTHON_TYPES: dict[str, type] = {"int": int, "float": float, "string": str, "str": str, "path": str, "uri": str}


@dataclasses.dataclass(frozen=True, kw_only=True)
class StepArgs:
    """The parsed arguments of one entry point; subclasses name it and declare its parameters."""

    entry_point: ClassVar[str]


A = TypeVar("A", bound=StepArgs)


def load_entry_points(mlproject: Path = MLPROJECT) -> dict[str, dict[str, Any]]:
    """The ``entry_points`` mapping of an MLproject file (shared parameters resolved)."""
    return _load(str(mlproject), mlproject.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load(path: str, _mtime: int) -> dict[str, dict[str, Any]]:
    with open(path) as handle:
        entry_points: dict[str, dict[str, Any]] = yaml.load(handle, Loader=_YAML_LOADER)["entry_points"]
    return entry_points


def parameters(entry_point: str, mlproject: Path = MLPROJECT) -> dict[str, dict[str, Any]]:
    """The declared parameters of one entry point: name -> ``{type, default}``."""
    return load_entry_points(mlproject)[entry_point].get("parameters") or {}


def field_types(args_type: type[StepArgs]) -> dict[str, type]:
    """The Python type of each parameter field of an arguments dataclass."""
    hints = typing.get_type_hints(args_type)
    return {field.name: hints[field.name] for field in dataclasses.fields(args_type)}


def build_parser(entry_point: str, mlproject: Path = MLPROJECT) -> argparse.ArgumentParser:
    """An argparse parser whose options are the entry point's declared parameters, all read as text."""
    spec = load_entry_points(mlproject)[entry_point]
    parser = argparse.ArgumentParser(prog=f"python -m steps.{entry_point}", description=spec.get("command"))
    for name, param in parameters(entry_point, mlproject).items():
        default = param.get("default")
        parser.add_argument(
            f"--{name}",
            default=None if default is None else str(default),
            required=default is None,
            help=param.get("type", "string") + ("" if default is None else f" (default: {default})"),
        )
    return parser


def parse_args(args_type: type[A], argv: list[str] | None = None) -> tuple[A, dict[str, str]]:
    """A step's arguments, typed, and the strings as given (what the run logs as its parameters).

    A value of the wrong type exits with a one-line error, as argparse does.
    """
    parser = build_parser(args_type.entry_point)
    raw: dict[str, str] = vars(parser.parse_args(argv))
    types = field_types(args_type)
    if set(types) != set(raw):
        raise RuntimeError(
            f"{args_type.__name__} and MLproject's {args_type.entry_point} declare different "
            f"parameters: {sorted(set(types) ^ set(raw))}"
        )
    values = {}
    for name, text in raw.items():
        try:
            values[name] = convert(text, types[name])
        except ValueError:
            parser.error(f"parameter {name} must be {_describe(types[name])}, got {text!r}")
    parsed = args_type(**values)
    return parsed, raw


def convert(text: str, kind: type[Any]) -> Any:
    """A parameter's text as ``kind``: int, float, str or a StrEnum (one of its values)."""
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        return kind(text.strip())
    return kind(text)


def _describe(kind: type) -> str:
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        return "one of " + ", ".join(member.value for member in kind)
    return {int: "int", float: "float"}.get(kind, kind.__name__)


def default_of(entry_point: str, name: str) -> Any:
    """The typed default MLproject declares for one parameter of an entry point."""
    param = parameters(entry_point)[name]
    return PYTHON_TYPES[param.get("type", "string")](param["default"])


def to_params(args: StepArgs) -> dict[str, str]:
    """An arguments dataclass as ``-P name=value`` strings that parse back to the same values."""
    return {field.name: format_value(getattr(args, field.name)) for field in dataclasses.fields(args)}


def format_value(value: object) -> str:
    """A parameter value as text: enums by value, floats exactly (``repr``), the rest with ``str``."""
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, float):
        return repr(value)
    return str(value)
