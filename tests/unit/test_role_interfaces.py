"""Each role describes its variables three times: defaults/main.yml (the values), meta/argument_specs.yml (types,
checked before the role runs) and the README's variables table (for the operator). These tests keep them in
agreement: the same names everywhere, and the same default wherever two of them state one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.parent.parent.name for p in (ROOT / "roles").glob("*/meta/argument_specs.yml"))
# A README row: | `name` | default | meaning |, or several names that share one row: `a` / `b` or `a` / `_c`.
ROW = re.compile(r"^\|\s*(`[a-z0-9_]+`(?:\s*(?:/|,)\s*`[a-z0-9_]+`)*)\s*\|\s*(.*?)\s*\|.*\|\s*$")


def defaults(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}


def options(role: str) -> dict[str, dict]:
    """Every option of every entry point (entry points other than main take a subset of main's)."""
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    found: dict[str, dict] = {}
    for entry in specs.values():
        found.update(entry.get("options") or {})
    return found


def readme_rows(role: str) -> dict[str, str]:
    """The variables table of the role's README: name -> its Default cell."""
    text = (ROOT / "roles" / role / "README.md").read_text()
    section = text.split("\n## Variables\n", 1)[1].split("\n## ", 1)[0]  # not the tables of facts it publishes
    rows = {}
    for line in section.splitlines():
        if found := ROW.match(line):
            first, *more = re.findall(r"`([a-z0-9_]+)`", found.group(1))
            # `pi_agent_service_enabled` / `_state`: the second name replaces the first one's last word.
            for name in (first, *(first.rsplit("_", 1)[0] + m if m.startswith("_") else m for m in more)):
                rows[name] = found.group(2)
    return rows


def public(role: str, names) -> set[str]:
    """The role's own variables (prefixed with its name; role__ names are internal)."""
    return {n for n in names if n.startswith(f"{role}_") and not n.startswith(f"{role}__")}


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_in_the_argument_specs_and_every_optional_argument_has_a_default(role: str) -> None:
    specs = options(role)
    optional = {name for name, spec in specs.items() if not spec.get("required")}
    assert public(role, defaults(role)) - set(specs) == set(), "in defaults/main.yml, not in argument_specs"
    assert public(role, optional) - set(defaults(role)) == set(), "optional in argument_specs, not in defaults"


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_state_the_defaults_main_yml_sets(role: str) -> None:
    values = defaults(role)
    differ = {
        name: (spec["default"], values.get(name))
        for name, spec in options(role).items()
        if "default" in spec and name in values and "{{" not in str(values[name]) and spec["default"] != values[name]
    }  # a default computed from other variables (a template) is described in words or by its usual value
    assert differ == {}, "argument_specs default, defaults/main.yml value"


@pytest.mark.parametrize("role", ROLES)
def test_the_readme_table_lists_every_variable_of_the_argument_specs(role: str) -> None:
    specs, rows = set(options(role)), set(readme_rows(role))
    assert (public(role, specs) - rows, public(role, rows) - specs) == (set(), set()), "(not in README, not in specs)"


@pytest.mark.parametrize("role", ROLES)
def test_a_default_the_readme_writes_as_a_literal_is_the_one_in_defaults_main_yml(role: str) -> None:
    values = defaults(role)
    differ = {}
    for name, cell in readme_rows(role).items():
        literal = re.fullmatch(r"`([^`]*)`", cell)
        if literal is None or name not in values or "{{" in str(values[name]) or "{{" in literal.group(1):
            continue  # prose (official download site), or a value computed from other variables
        if power := re.fullmatch(r"(\d+)\*\*(\d+)", literal.group(1)):
            stated = int(power.group(1)) ** int(power.group(2))  # 10**18 wei
        else:
            try:
                stated = yaml.safe_load(literal.group(1))
            except yaml.YAMLError:
                stated = literal.group(1)
        if stated != values[name] and str(stated) != str(values[name]):
            differ[name] = (literal.group(1), values[name])
    assert differ == {}, "README, defaults/main.yml"
