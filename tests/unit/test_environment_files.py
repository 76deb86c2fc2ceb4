"""The shipped environment files work: conda.yaml parses as conda-lock parses it and agrees with the lock."""

from __future__ import annotations

import json
from pathlib import Path

from conda_lock.src_parser.environment_yaml import parse_environment_file

from psystock.entry_points import PROJECT_ROOT
from tools import conda_env


def test_conda_yaml_is_the_lock_rendered():
    """`make lock` writes it; a lock changed without it fails here."""
    assert (PROJECT_ROOT / "conda.yaml").read_text() == conda_env.render(
        (PROJECT_ROOT / "requirements.lock").read_text()
    )
    assert conda_env.main(["--check"]) == 0


def test_conda_lock_reads_conda_yaml_for_every_platform_it_locks(tmp_path: Path):
    """conda-lock's own parser (what `make lock-conda` runs first), offline: a local PyPI-to-conda
    mapping file stands in for the one it downloads."""
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"pip": {"pypi_name": "pip", "conda_name": "pip", "conda_forge": "pip"}}))
    spec = parse_environment_file(PROJECT_ROOT / "conda.yaml", ["linux-64", "osx-arm64"], f"file://{mapping}")
    locked = conda_env.pins((PROJECT_ROOT / "requirements.lock").read_text())
    for platform in ("linux-64", "osx-arm64"):
        dependencies = spec.dependencies[platform]
        pip = {d.name: d.version for d in dependencies if d.manager == "pip"}
        assert pip == {name: f"=={version}" for name, version in locked.items()}
        conda = {d.name: d.version for d in dependencies if d.manager == "conda"}
        assert conda["python"] == "3.11.7.*"
