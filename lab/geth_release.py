"""The geth release HelioGrid installs, read from the one file that names it: the geth role's defaults.

    from lab.geth_release import geth_release
    version, commit = geth_release()       # geth_version, geth_commit

Shell scripts read the same two words: `read -r version commit < <(python3 lab/geth_release.py)`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

DEFAULTS = Path(__file__).resolve().parent.parent / "roles" / "geth" / "defaults" / "main.yml"


def geth_release() -> tuple[str, str]:
    """The release number and the first 8 characters of its git commit (geth_version, geth_commit)."""
    defaults = yaml.safe_load(DEFAULTS.read_text())
    return str(defaults["geth_version"]), str(defaults["geth_commit"])


if __name__ == "__main__":
    print(*geth_release())
