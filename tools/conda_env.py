"""Write conda.yaml from requirements.lock, or check that it is current.

conda.yaml is the environment ``mlflow run`` builds (conda, virtualenv or uv)
and what ``make lock-conda`` feeds to conda-lock. conda-lock reads every entry
of its pip section as a requirement, so the section lists each pin of the
lock itself (``name==version``) rather than ``-r requirements.lock``.

    python -m tools.conda_env --write    # what `make lock` runs
    python -m tools.conda_env --check    # exit 1 if conda.yaml is stale
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
CONDA_YAML = ROOT / "conda.yaml"
PYTHON = "3.11.7"  # the version MLflow's virtualenv and uv managers install too

HEADER = """\
# The environment `mlflow run` builds (conda, virtualenv or uv): Python pinned
# exactly, every package at its version in requirements.lock.
# Written by `make lock` (python -m tools.conda_env --write): do not edit by hand.
"""


def pins(lock_text: str) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line of a pip lock, in the lock's order."""
    found = {}
    for line in lock_text.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)==([^\s;\\]+)", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def render(lock_text: str) -> str:
    """conda.yaml for the pins of ``lock_text``."""
    lines = [
        HEADER + "name: psystock",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={PYTHON}",
        "  - pip",
        "  - pip:",
    ]
    lines += [f"      - {name}=={version}" for name, version in pins(lock_text).items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true")
    action.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    expected = render(LOCK.read_text())
    if args.write:
        CONDA_YAML.write_text(expected)
        return 0
    if CONDA_YAML.read_text() != expected:
        print("conda.yaml does not match requirements.lock: run `make lock`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
