"""The lock files the roles install from (files/*/requirements*.lock) are current with their pyproject.toml and pin
every package with its hashes, as pip's --require-hashes needs; the wheelhouse build reads them per target platform.

A dependency changed in a pyproject without `make locks` fails here, before a role would refuse it on a host.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from lab.lock_for_target import entries, for_target

ROOT = Path(__file__).resolve().parents[2]
# lock file: (project, extras), as lab/compile-locks.sh compiles them
LOCKS = {
    "files/pi_agent/requirements.lock": ("files/pi_agent", ()),
    "files/pi_agent/requirements-pi.lock": ("files/pi_agent", ("pi",)),
    "files/stats_app/requirements.lock": ("files/stats_app", ()),
}
PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^\s;]+)\s*(;(?P<marker>[^-]*?))?\s*"
    r"(?P<hashes>(--hash=sha256:[0-9a-f]{64}\s*)+)$"
)


def pins(lock: str) -> dict[str, tuple[str, str, list[str]]]:
    """name: (version, marker, hashes) of every entry of a lock."""
    found = {}
    for entry in entries((ROOT / lock).read_text()):
        match = PIN.match(entry)
        assert match, f"{lock}: not an exact pin with sha256 hashes: {entry[:200]}"
        found[canonicalize_name(match["name"])] = (
            match["version"],
            (match["marker"] or "").strip(),
            match["hashes"].split(),
        )
    return found


def wanted(project: str, extras: tuple[str, ...]) -> list[Requirement]:
    meta = tomllib.loads((ROOT / project / "pyproject.toml").read_text())["project"]
    specs = list(meta["dependencies"])
    for extra in extras:
        specs += meta["optional-dependencies"][extra]
    return [Requirement(spec) for spec in specs]


def test_the_compile_script_and_the_tests_name_the_same_locks() -> None:
    script = (ROOT / "lab" / "compile-locks.sh").read_text()
    for lock, (project, extras) in LOCKS.items():
        assert f'"{lock} {project}/pyproject.toml{"".join(" " + e for e in extras)}"' in script, lock
    assert sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("files/*/requirements*.lock")) == sorted(LOCKS)


@pytest.mark.parametrize("lock", LOCKS)
def test_every_locked_package_is_pinned_with_its_hashes(lock: str) -> None:
    locked = pins(lock)
    assert len(locked) > 10, lock
    assert all(hashes for _, _, hashes in locked.values())


@pytest.mark.parametrize("lock", LOCKS)
def test_every_dependency_of_the_pyproject_is_locked_at_a_version_it_allows(lock: str) -> None:
    project, extras = LOCKS[lock]
    locked = pins(lock)
    for requirement in wanted(project, extras):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{lock} lacks {requirement}: run make locks"
        assert requirement.specifier.contains(locked[name][0], prereleases=True), (
            f"{lock} pins {name}=={locked[name][0]}, the pyproject asks {requirement}: run make locks"
        )


@pytest.mark.parametrize("lock", LOCKS)
def test_nothing_is_locked_for_the_project_that_its_pyproject_no_longer_asks(lock: str) -> None:
    project, extras = LOCKS[lock]
    direct = {canonicalize_name(r.name) for r in wanted(project, extras)}
    text = (ROOT / lock).read_text()
    # uv writes the pyproject as the "via" of a direct dependency: "# via heliogrid-agent (files/.../pyproject.toml)"
    via = {
        canonicalize_name(name)
        for name, block in re.findall(r"^([A-Za-z0-9._-]+)==.*?\n((?:    .*\n)+)", text, re.M)
        if f"({project}/pyproject.toml)" in block
    }
    assert via == direct, f"{lock}: locked as direct dependencies {sorted(via)}, the pyproject asks {sorted(direct)}"


def test_the_lock_seen_from_an_amd64_host_leaves_out_what_only_the_pis_install() -> None:
    lock = (ROOT / "files/pi_agent/requirements-pi.lock").read_text()
    pi = [line.split("==")[0] for line in for_target(lock, "aarch64", "3.11")]
    amd64 = [line.split("==")[0] for line in for_target(lock, "x86_64", "3.11")]
    assert "lgpio" in pi
    assert "lgpio" not in amd64
    assert "pywin32" not in pi + amd64
    assert all(";" not in line for line in for_target(lock, "aarch64", "3.13"))
