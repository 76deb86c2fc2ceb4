"""Cache keys of pipeline steps: what a step's result depends on, as one digest.

A key covers the entry point and its command, every resolved parameter
(normalised by its declared type, so ``1e-5`` and ``0.00001`` agree), the
content of the code the step runs (its module and the psystock modules it
imports, uncommitted edits included) and the identity of inputs that are not
runs (a source file's content, or the day for data that can still change).
Upstream runs enter through the ``runs:/`` URIs among the parameters.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from psystock import names
from psystock.entry_points import PROJECT_ROOT, load_entry_points

PACKAGE = "psystock"
EMPTY = "''"  # how an empty parameter shows in the log


def normalise(value: object, kind: str) -> str:
    """A parameter value as a canonical string for its MLproject type."""
    text = str(value).strip()
    try:
        if kind == "int":
            return str(int(text))
        if kind == "float":
            return repr(float(text))
    except ValueError:
        pass  # the step itself will reject it; keep the key distinct
    return text


def resolved_params(
    entry_point: str, params: Mapping[str, object], entry_points: dict[str, Any] | None = None
) -> dict[str, str]:
    """Every declared parameter of ``entry_point``: given values over defaults, normalised."""
    spec = (entry_points or load_entry_points())[entry_point].get("parameters") or {}
    resolved = {}
    for name, declared in spec.items():
        value = params.get(name, declared.get("default"))
        resolved[name] = normalise("" if value is None else value, declared.get("type", "string"))
    return resolved


def _module_path(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _imported_names(path: Path) -> frozenset[tuple[str, str | None]]:
    """psystock imports of a file: ``(module, None)`` for ``import m``, ``(module, name)`` for
    ``from m import name`` (``name`` may be a submodule or something the module defines)."""
    return _imports_in(path.read_text(), str(path))


@functools.cache
def _imports_in(source: str, filename: str) -> frozenset[tuple[str, str | None]]:
    """Parsed once per file content: main keys every step over the same files."""
    found: set[tuple[str, str | None]] = set()
    for node in _runtime_nodes(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found.update((alias.name, None) for alias in node.names if alias.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
            found.update((node.module, alias.name) for alias in node.names)
    return frozenset(found)


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:``, which never run."""
    nodes: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return nodes


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(module: str, name: str | None, root: Path) -> list[Path]:
    """The files an import runs: a submodule imported by name is that file alone, anything else
    its module's file. Code loaded by name (``psystock.models`` loads a family's module) is not
    an import: the steps that load it add its files to their key (``Step.code_files``)."""
    if name is not None:
        submodule = _module_path(f"{module}.{name}", root)
        if submodule is not None:
            return [submodule]
    target = _module_path(module, root)
    return [] if target is None else [target]


def code_files(step_file: Path, root: Path = PROJECT_ROOT) -> list[Path]:
    """The step file and every psystock file it may run, by following imports."""
    seen: set[Path] = set()
    todo = [step_file]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module, name in _imported_names(path):
            todo.extend(_targets(module, name, root))
        # Importing a module also runs its package's __init__.
        init = path.parent / "__init__.py"
        if path.parent != root and init.is_file():
            todo.append(init)
    return sorted(seen)


def code_digest(entry_point: str, root: Path = PROJECT_ROOT) -> str:
    """Content hash of the code ``entry_point`` runs and of its MLproject declaration."""
    digest = hashlib.sha256()
    spec = load_entry_points(root / "MLproject")[entry_point]
    digest.update(json.dumps(spec, sort_keys=True, default=str).encode())
    step_file = root / "steps" / f"{entry_point}.py"
    for path in code_files(step_file, root):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def code_digest_of(entry_points: tuple[str, ...], root: Path = PROJECT_ROOT, files: tuple[Path, ...] = ()) -> str:
    """The code digest of a step that runs the code of several entry points (a pipeline runs
    every step's), and of ``files`` it loads by name (a family's module, maybe another
    package's); for one entry point and no files, its own :func:`code_digest`."""
    if len(entry_points) == 1 and not files:
        return code_digest(entry_points[0], root)
    digest = hashlib.sha256()
    for entry_point in sorted(entry_points):
        digest.update(f"{entry_point}:{code_digest(entry_point, root)}".encode())
    for path in sorted(files):
        # By name within its package, not by where it is installed: the same code, the same key.
        digest.update(f"{path.parent.name}/{path.name}:".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def source_identity(source: str, end: date, today: date) -> str:
    """What identifies the data a ``fetch_data`` source returns.

    A local CSV is its content. Yahoo (or the price store in front of it) or a URL
    can change until ``end`` is in the past (today's bar is still moving), so such
    a key holds for one day.
    """
    path = Path(source.removeprefix("file://"))
    if source not in names.REMOTE_SOURCES and "://" not in source.replace("file://", "") and path.is_file():
        return "file:" + hashlib.sha256(path.read_bytes()).hexdigest()
    if source in names.REMOTE_SOURCES and end < today:
        return f"{source}:closed-range"
    return f"{source}:as-of:{today.isoformat()}"


def describe_changes(
    before: dict[str, str], now: dict[str, str], code_changed: bool, inputs_changed: bool
) -> list[str]:
    """What differs between an earlier run's key ingredients and this one's, for the log.

    A short parameter shows both values (``epochs 1 -> 2``); an upstream run
    (a ``runs:/`` URI or a run id), a model version or a long value shows its
    name alone.
    """
    changed = []
    for name in sorted(set(before) | set(now)):
        old, new = before.get(name, ""), now.get(name, "")
        if old == new:
            continue
        if _names_runs(old) or _names_runs(new):
            changed.append(f"{name} (other upstream runs)" if "," in old + new else f"{name} (another upstream run)")
        elif old.startswith(names.MODELS_SCHEME) or new.startswith(names.MODELS_SCHEME):
            changed.append(f"{name} (another model version)")
        elif len(old) > 40 or len(new) > 40:
            changed.append(name)
        else:
            changed.append(f"{name} {old or EMPTY} -> {new or EMPTY}")
    if code_changed:
        changed.append("code")
    if inputs_changed:
        changed.append("input data")
    return changed


def _names_runs(value: str) -> bool:
    """A ``runs:/`` URI, a run id or a comma-separated list of run ids."""
    return value.startswith(names.RUNS_SCHEME) or re.fullmatch(r"[0-9a-f]{32}(,[0-9a-f]{32})*", value) is not None


def cache_key(entry_point: str, params: dict[str, str], code: str, inputs: str = "") -> str:
    """One digest of everything a step's result depends on."""
    payload = json.dumps({"entry_point": entry_point, "params": params, "code": code, "inputs": inputs}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()
