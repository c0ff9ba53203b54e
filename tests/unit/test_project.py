"""Project-level promises: the collections requirements.yml names are the ones the pinned ansible bundles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def satisfies(version: str, spec: str) -> bool:
    # A collection's pre-release (10.2.0-dev0) satisfies a range as any other version, as with Galaxy's own check.
    return SpecifierSet(spec).contains(Version(version), prereleases=True)


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


def apt_package_names(tasks_file: Path) -> set[str]:
    """The package names a role's tasks install with ansible.builtin.apt (literal names only)."""
    names: set[str] = set()
    for task in yaml.safe_load(tasks_file.read_text()):
        args = task.get("ansible.builtin.apt") or {}
        name = args.get("name")
        names.update([name] if isinstance(name, str) else name or [])
    return names


def test_the_overlay_play_preinstalls_exactly_the_firewalls_and_the_exporters_packages():
    # overlay.yml installs them in WireGuard's apt transaction; a renamed package in either role must be renamed there.
    plays = yaml.safe_load((ROOT / "playbooks" / "overlay.yml").read_text())
    (play,) = [p for p in plays if [r["role"] for r in p.get("roles", [])] == ["wireguard", "firewall"]]
    wanted = apt_package_names(ROOT / "roles" / "firewall" / "tasks" / "main.yml") | apt_package_names(
        ROOT / "roles" / "node_exporter" / "tasks" / "main.yml"
    )
    assert wanted == {"nftables", "netbase", "prometheus-node-exporter"}
    assert set(play["vars"]["wireguard_extra_packages"]) == wanted
