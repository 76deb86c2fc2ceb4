"""Write what follows from the registries' declarations, or check that it is current.

A built-in family is one module in ``psystock/models`` and one line in
``psystock.models.BUILT_IN``; a baseline, a feature set and a metric are one
record each (``psystock.baselines.BASELINES``, ``psystock.features.FEATURE_SETS``,
``psystock.scores.SCORES``). From those this tool writes what follows from
them, so no hand edit can drift:

- ``MLproject``: the generic ``train`` entry point and one ``train_<family>``
  per built-in family (the scoring parameters by their shared aliases, then
  the family's hyper-parameters with their types and defaults);
- ``steps/train_<family>.py``: the thin step of each;
- ``docs/entry-points.md``: the training heading and one table per family,
  each hyper-parameter's meaning taken from the comment on its field; the
  lists of feature sets, baselines and metrics with their descriptions.

    python -m tools.generate --write    # after adding or changing a family
    python -m tools.generate --check    # exit 1 if any of them is stale (a test runs it)
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import typing
from pathlib import Path
from typing import Any

import yaml

from psystock.baselines import BASELINES
from psystock.features import FEATURE_SETS
from psystock.models import BUILT_IN, GENERIC_ENTRY_POINT, Family, get_family
from psystock.scores import SCORES
from psystock.validation import Protocol

ROOT = Path(__file__).resolve().parent.parent
MLPROJECT = ROOT / "MLproject"
DOC = ROOT / "docs" / "entry-points.md"
STEPS = ROOT / "steps"

SCORING = ("training_data", *(f.name for f in dataclasses.fields(Protocol)))
YAML_TYPES = {int: "int", float: "float", str: "string"}
WIDTH = 88  # of a command's lines in MLproject

MLPROJECT_BEGIN = "  # >>> training entry points: written by `python -m tools.generate --write`; do not edit\n"
MLPROJECT_END = "  # <<< end of the written training entry points\n"
DOC_HEADING = ("<!-- >>> training heading: written by tools/generate.py -->\n", "<!-- <<< -->\n")
DOC_TABLES = ("<!-- >>> family tables: written by tools/generate.py -->\n", "<!-- <<< -->\n")
DOC_FEATURE_SETS = ("<!-- >>> feature sets: written by tools/generate.py -->\n", "<!-- <<< -->\n")
DOC_BASELINES = ("<!-- >>> baselines: written by tools/generate.py -->\n", "<!-- <<< -->\n")
DOC_METRICS = ("<!-- >>> metrics: written by tools/generate.py -->\n", "<!-- <<< -->\n")


def _shared(mlproject_text: str) -> dict[str, dict[str, Any]]:
    shared: dict[str, dict[str, Any]] = yaml.safe_load(mlproject_text)["shared_parameters"]
    return shared


def _yaml_default(value: Any) -> str:
    if isinstance(value, str):
        plain = value and yaml.safe_load(value) == value and not re.search(r"[:#{}\[\],&*!|>'\"%@`]", value)
        return value if plain else '"' + value.replace('"', '\\"') + '"'
    return repr(value)


def _hyper_parameters(family: Family[Any]) -> list[tuple[str, str, Any]]:
    """``(name, MLproject type, default)`` of each hyper-parameter, in declaration order."""
    hints = typing.get_type_hints(family.params_type)
    defaults = family.defaults()
    return [(f.name, YAML_TYPES[hints[f.name]], getattr(defaults, f.name)) for f in dataclasses.fields(defaults)]


def _entry_point(name: str, params: list[tuple[str, str, Any]], shared: dict[str, dict[str, Any]]) -> str:
    lines = [f"  {name}:", "    parameters:"]
    lines += [f"      {p}: *{p}" for p in SCORING]
    for param, kind, default in params:
        spec = shared.get(param)
        if spec is not None and spec.get("type") == kind and spec.get("default") == default:
            lines.append(f"      {param}: *{param}")
        else:
            lines.append(f"      {param}: {{type: {kind}, default: {_yaml_default(default)}}}")
    words = [f"python -m steps.{name}"] + [f"--{p} {{{p}}}" for p in (*SCORING, *(p for p, _, _ in params))]
    lines.append("    command: >-")
    line = "     "
    for word in words:
        if len(line) + 1 + len(word) > WIDTH and line.strip():
            lines.append(line)
            line = "     "
        line += " " + word
    lines.append(line)
    return "\n".join(lines) + "\n"


GENERIC_PARAMS = [("family", "string", "logreg"), ("hyperparameters", "string", "")]


def mlproject_block(mlproject_text: str) -> str:
    shared = _shared(mlproject_text)
    blocks = [_entry_point(GENERIC_ENTRY_POINT, GENERIC_PARAMS, shared)]
    blocks += [
        _entry_point(info.entry_point, _hyper_parameters(get_family(name)), shared) for name, info in BUILT_IN.items()
    ]
    return "\n".join(blocks)


def step_file(name: str) -> str:
    family = get_family(name)
    params = family.params_type
    return f'''"""{family.entry_point}: fit and score the {name} family on a build_features table.

Reads: ``training_data`` (``runs:/<id>/features`` or a CSV in the reference layout).
Writes: see :mod:`psystock.train_step` -- test-split metrics, confusion matrix, model.
Written by ``python -m tools.generate --write`` from ``{params.__module__}``: do not edit.
"""

from __future__ import annotations

from dataclasses import dataclass

from psystock import train_step
from {params.__module__} import {params.__qualname__}
from psystock.protocol import ScoringArgs


@dataclass(frozen=True, kw_only=True)
class Args(ScoringArgs, {params.__qualname__}):
    entry_point = "{family.entry_point}"


if __name__ == "__main__":
    train_step.main(Args, "{name}")
'''


def _meanings(params_type: type) -> dict[str, str]:
    """Each field's meaning: the comment on its line of the dataclass."""
    source = inspect.getsource(params_type)
    return dict(re.findall(r"^\s+(\w+)\s*:[^=\n]+=[^#\n]*#\s*(.+)$", source, flags=re.MULTILINE))


def _summary(family: Family[Any]) -> str:
    doc = inspect.getdoc(sys.modules[family.params_type.__module__]) or family.name
    first = " ".join(doc.split("\n\n")[0].split())
    return first.replace("``", "`")


def doc_heading() -> str:
    names = ", ".join(f"`{n}`" for n in (GENERIC_ENTRY_POINT, *(i.entry_point for i in BUILT_IN.values())))
    return f"## {names}\n"


def doc_tables() -> str:
    sections = [
        f"### `{GENERIC_ENTRY_POINT}`\n\n"
        "Any family by name, a plugin's too (see [add-a-model.md](add-a-model.md)), its\n"
        "hyper-parameters as one string over the family's defaults.\n\n"
        "| parameter | type | default | meaning |\n|---|---|---|---|\n"
        f"| `family` | string | logreg | a built-in family ({', '.join(BUILT_IN)}) "
        "or one an installed package declares |\n"
        '| `hyperparameters` | string | "" | `name=value,...` of the family\'s hyper-parameters (below); '
        "empty: its defaults |\n"
    ]
    for name, info in BUILT_IN.items():
        family = get_family(name)
        meanings = _meanings(family.params_type)
        rows = "".join(
            f"| `{param}` | {kind} | {default} | {meanings.get(param, '')} |\n"
            for param, kind, default in _hyper_parameters(family)
        )
        sections.append(
            f"### `{info.entry_point}`\n\nRun `{info.run_name}`: {_summary(family)}\n\n"
            f"| parameter | type | default | meaning |\n|---|---|---|---|\n{rows}"
        )
    return "\n".join(sections)


def registry_list(records: dict[str, Any]) -> str:
    """One bullet per record: its name and its description."""
    return "".join(f"- `{name}`: {record.description}.\n" for name, record in records.items())


def _replace(text: str, begin: str, end: str, body: str, where: Path) -> str:
    if begin not in text or end not in text[text.index(begin) :]:
        raise SystemExit(f"{where}: the markers {begin.strip()!r} ... {end.strip()!r} are missing")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + begin + body + end + tail


def rendered() -> dict[Path, str]:
    """Every file this tool writes, as it should read now."""
    mlproject = MLPROJECT.read_text()
    files = {MLPROJECT: _replace(mlproject, MLPROJECT_BEGIN, MLPROJECT_END, mlproject_block(mlproject), MLPROJECT)}
    doc = _replace(DOC.read_text(), *DOC_HEADING, doc_heading(), DOC)
    doc = _replace(doc, *DOC_TABLES, doc_tables(), DOC)
    for markers, records in ((DOC_FEATURE_SETS, FEATURE_SETS), (DOC_BASELINES, BASELINES), (DOC_METRICS, SCORES)):
        doc = _replace(doc, *markers, registry_list(records), DOC)
    files[DOC] = doc
    for name, info in BUILT_IN.items():
        files[STEPS / f"{info.entry_point}.py"] = step_file(name)
    return files


def stale() -> list[Path]:
    return [path for path, text in rendered().items() if not path.is_file() or path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    if args.write:
        for path, text in rendered().items():
            path.write_text(text)
        return 0
    outdated = stale()
    for path in outdated:
        print(f"{path.relative_to(ROOT)} is stale: run python -m tools.generate --write", file=sys.stderr)
    return 1 if outdated else 0


if __name__ == "__main__":
    sys.exit(main())
