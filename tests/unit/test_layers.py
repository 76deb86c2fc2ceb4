"""The layering reads from the imports: the vocabulary and the domain never reach the MLflow plumbing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from psystock.entry_points import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "psystock"
# What runs steps and pipelines: the drivers and the generic training step.
DRIVERS = {"psystock.pipeline", "psystock.fanout", "psystock.train_step"}
# What else talks to MLflow as it runs: Spark tasks, the tracking server.
RUNNING = DRIVERS | {"psystock.spark", "psystock.server"}
PLUMBING = "psystock.mlflow_io"


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, top_level: bool = False) -> set[str]:
    """Modules a file imports; with ``top_level``, only those it imports when it is imported
    (not inside functions, which import lazily)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body if top_level else ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


DOMAIN = sorted(
    path
    for path in PACKAGE.rglob("*.py")
    if not module_name(path).startswith(PLUMBING) and module_name(path) not in RUNNING | {"psystock"}
)


def reaches(imported: set[str], prefix: str) -> set[str]:
    return {name for name in imported if name == prefix or name.startswith(f"{prefix}.")}


@pytest.mark.parametrize("path", DOMAIN, ids=module_name)
def test_the_vocabulary_and_domain_never_import_the_plumbing_or_the_drivers(path):
    imported = imports(path)
    assert not {name for name in imported if name.startswith(PLUMBING)}, "imports the MLflow plumbing"
    assert not {
        name
        for name in imported
        if name.split(".")[1:2] and name.split(".")[0] == "psystock" and name.split(".")[1] in RUNNING
    }, "imports a driver"


@pytest.mark.parametrize("path", DOMAIN, ids=module_name)
def test_the_domain_imports_mlflow_only_where_a_function_needs_it(path):
    """MLflow's own APIs (autologging, flavours, evaluation) are imported inside the functions
    that use them, so pure code and the tests of it load no tracking client."""
    assert not reaches(imports(path, top_level=True), "mlflow")


def test_the_names_are_pure():
    assert {name.split(".")[0] for name in imports(PACKAGE / "names.py", top_level=True)} <= {
        "__future__",
        "enum",
        "pathlib",
    }


STEP_CODE_LINES = 65  # a step's typed arguments and the calls it makes, past its docstring


@pytest.mark.parametrize("path", sorted((PROJECT_ROOT / "steps").glob("*.py")), ids=lambda p: p.stem)
def test_a_step_is_its_arguments_and_the_library_calls_it_makes(path):
    """Logic lives where unit tests reach it: a step file holds no helpers of its own."""
    tree = ast.parse(path.read_text())
    body = tree.body[1:] if ast.get_docstring(tree) else tree.body
    lines = len(path.read_text().splitlines()) - body[0].lineno + 1 if body else 0
    assert lines <= STEP_CODE_LINES, f"{lines} lines of code: move its logic into the package"
    helpers = [n.name for n in body if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name.startswith("_")]
    assert not helpers, f"private helpers {helpers}: they belong in the package, with unit tests"
