"""Every module in a role's library documents itself in YAML that ansible-doc can read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(ROOT.glob("roles/*/library/*.py"))


def docs(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text())
    return {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in ("DOCUMENTATION", "EXAMPLES", "RETURN")
    }


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parts[-3]}/{p.stem}")
def test_module_documentation_is_yaml_naming_the_module(path: Path) -> None:
    found = docs(path)
    assert "DOCUMENTATION" in found, f"{path}: no DOCUMENTATION"
    documentation = yaml.safe_load(found["DOCUMENTATION"])
    assert documentation["module"] == path.stem
    assert documentation["short_description"]
    for name in ("EXAMPLES", "RETURN"):
        if name in found:
            yaml.safe_load(found[name])
