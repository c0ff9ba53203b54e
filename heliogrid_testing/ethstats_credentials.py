"""Per-node ethstats credentials as roles/stats_app/tasks/ethstats_node.yml installs them, for the stats app's
tests: one file per node name in the credentials directory, holding `sha256:<hex digest of the node's secret>`.
Written here independently of the app, so a test also checks that the app reads the role's format."""

from __future__ import annotations

import hashlib
from pathlib import Path


def node_secret(name: str) -> str:
    """A secret of 40 letters and digits (what geth's `name:secret@host` can carry), different for every name."""
    return hashlib.sha256(f"heliogrid-test-node:{name}".encode()).hexdigest()[:40]


def enrol(directory: Path, name: str, secret: str | None = None) -> str:
    """Write `name`'s credential file (0640, as the role does) and return the secret it admits."""
    secret = node_secret(name) if secret is None else secret
    path = directory / name
    path.write_text(f"sha256:{hashlib.sha256(secret.encode()).hexdigest()}")
    path.chmod(0o640)
    return secret


def credentials_dir(path: Path, names: tuple[str, ...] = ()) -> Path:
    """Create the credentials directory as the role does (0750), with a credential for each of `names`."""
    path.mkdir(parents=True)
    path.chmod(0o750)  # mkdir's mode is filtered by the umask
    for name in names:
        enrol(path, name)
    return path
