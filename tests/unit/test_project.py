"""Project-level promises: the collections requirements.yml names are the ones the pinned ansible bundles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from ansible.module_utils.compat.version import LooseVersion

ROOT = Path(__file__).resolve().parents[2]


def satisfies(version: str, spec: str) -> bool:
    checks = {
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
    }
    for clause in spec.split(","):
        clause = clause.strip()
        op = next(o for o in (">=", "<=", "==", "!=", ">", "<") if clause.startswith(o))
        if not checks[op](LooseVersion(version), LooseVersion(clause[len(op) :].strip())):
            return False
    return True


def test_requirements_are_satisfied_by_the_bundled_collections():
    wanted = yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]
    galaxy = Path(sys.executable).parent / "ansible-galaxy"
    listed = json.loads(
        subprocess.run(
            [str(galaxy), "collection", "list", "--format", "json"], check=True, capture_output=True, text=True
        ).stdout
    )
    installed: dict[str, str] = {}
    for collections in listed.values():
        for name, info in collections.items():
            installed.setdefault(name, info["version"])
    problems = [
        f"{c['name']} {c['version']} (installed: {installed.get(c['name'], 'missing')})"
        for c in wanted
        if c["name"] not in installed or not satisfies(installed[c["name"]], c["version"])
    ]
    assert problems == []


def test_version_spec_check_rejects_a_version_outside_the_range():
    assert satisfies("10.1.2", ">=10.1.0,<11.0.0")
    assert not satisfies("11.0.0", ">=10.1.0,<11.0.0")
    assert not satisfies("9.9.9", ">=10.1.0,<11.0.0")
