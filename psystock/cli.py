"""Command lines built from MLproject, the one place parameters are declared.

Every step file calls :func:`parse_step_args` with its entry-point name: the
parameter names, types and defaults come from ``MLproject`` itself, so a step
run as ``python steps/x.py`` behaves exactly like ``mlflow run . -e x``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MLPROJECT = PROJECT_ROOT / "MLproject"

# libyaml's loader when PyYAML was built with it: ten times faster, and main reads
# MLproject once per step it launches.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_CASTS = {"int": int, "float": float, "string": str, "str": str, "path": str, "uri": str}


@dataclass(frozen=True)
class StepArgs:
    """Parsed arguments of one step: typed values and the strings as given."""

    entry_point: str
    values: dict[str, Any]
    raw: dict[str, str]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def load_entry_points(mlproject: Path = MLPROJECT) -> dict[str, dict]:
    """Return the ``entry_points`` mapping of an MLproject file."""
    with open(mlproject) as handle:
        return yaml.load(handle, Loader=_YAML_LOADER)["entry_points"]


def build_parser(entry_point: str, mlproject: Path = MLPROJECT) -> argparse.ArgumentParser:
    """An argparse parser whose options are the entry point's declared parameters."""
    spec = load_entry_points(mlproject)[entry_point]
    parser = argparse.ArgumentParser(prog=f"python -m steps.{entry_point}", description=spec.get("command"))
    for name, param in (spec.get("parameters") or {}).items():
        kind = param.get("type", "string")
        default = param.get("default")
        parser.add_argument(
            f"--{name}",
            type=str,
            default=None if default is None else str(default),
            required=default is None,
            help=f"{kind}" + ("" if default is None else f" (default: {default})"),
        )
        parser.set_defaults(**{f"_type_{name}": kind})
    return parser


def parse_step_args(entry_point: str, argv: list[str] | None = None) -> StepArgs:
    """Parse a step's command line; a value of the wrong type exits with a one-line error."""
    parser = build_parser(entry_point)
    namespace = vars(parser.parse_args(argv))
    raw = {k: v for k, v in namespace.items() if not k.startswith("_type_")}
    values = {}
    for name, text in raw.items():
        kind = namespace[f"_type_{name}"]
        try:
            values[name] = _CASTS[kind](text)
        except ValueError:
            parser.error(f"parameter {name} must be {kind}, got {text!r}")
    return StepArgs(entry_point, values, raw)


def default_value(entry_point: str, name: str) -> Any:
    """The typed default MLproject declares for one parameter of an entry point."""
    param = load_entry_points()[entry_point]["parameters"][name]
    return _CASTS[param.get("type", "string")](param["default"])
