"""What a role's venv holds, against what its lock pins: the roles install with --require-hashes from the lock."""

from __future__ import annotations

import json
from pathlib import Path

from packaging.utils import canonicalize_name

from lab.lock_for_target import for_target

ROOT = Path(__file__).resolve().parents[1]
# What `python3 -m venv` puts in a venv before any lock is applied (3.11 also brings setuptools).
VENV_TOOLS = {"pip", "setuptools"}


def installed(host, venv: str) -> dict[str, str]:
    """name: version of every distribution in the venv (without the host's own packages)."""
    script = (
        "import importlib.metadata as m, json, sysconfig; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions("
        "path=sorted({sysconfig.get_path(k) for k in ('purelib', 'platlib')}))}))"
    )
    found = json.loads(host.check_output(f'{venv}/bin/python -c "{script}"'))
    return {canonicalize_name(name): version for name, version in found.items()}


def pinned(host, venv: str, lock: str, package: str, version: str) -> dict[str, str]:
    """name: version of what the lock pins for the host's machine and Python, with the project's own package."""
    machine = host.check_output("uname -m")
    python = host.check_output(f"{venv}/bin/python -c \"import sys; print('%d.%d' % sys.version_info[:2])\"")
    entries = for_target((ROOT / lock).read_text(), machine, python)
    pins = dict(entry.split(" ")[0].split("==") for entry in entries)
    return {**{canonicalize_name(n): v for n, v in pins.items()}, canonicalize_name(package): version}


def unexpected(host, venv: str, lock: str, package: str, version: str) -> dict[str, tuple[str | None, str | None]]:
    """Every package whose installed version is not the pinned one: name: (installed, pinned)."""
    have, want = installed(host, venv), pinned(host, venv, lock, package, version)
    names = (set(have) | set(want)) - (VENV_TOOLS - set(want))
    return {name: (have.get(name), want.get(name)) for name in sorted(names) if have.get(name) != want.get(name)}
