"""The geth role's defaults (roles/geth/defaults/main.yml), where the release and the data directory are written
once; the build script and the tests read them here.

    from lab.geth_defaults import geth_defaults, geth_release
    version, commit = geth_release()       # geth_version, geth_commit
    ipc = geth_defaults()["geth_datadir"] + "/geth.ipc"

Shell scripts read the release as two words: `read -r version commit < <(python3 lab/geth_defaults.py)`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

DEFAULTS = Path(__file__).resolve().parent.parent / "roles" / "geth" / "defaults" / "main.yml"


def geth_defaults() -> dict:
    """Every default of the geth role, as written (templated values stay templates)."""
    return yaml.safe_load(DEFAULTS.read_text())


def geth_release() -> tuple[str, str]:
    """The release number and the first 8 characters of its git commit (geth_version, geth_commit)."""
    defaults = geth_defaults()
    return str(defaults["geth_version"]), str(defaults["geth_commit"])


if __name__ == "__main__":
    print(*geth_release())
