"""The project's ansible.cfg for Ansible runs in a scratch folder (inventory rendering tests)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def scratch_config(folder: Path) -> Path:
    """Write the project's ansible.cfg into `folder` and return its path: without the lab's vault password script,
    and with its plugin folders (the Mitogen strategy among them), which are relative to the file, named from the
    repository."""
    text = re.sub(r"(?m)^vault_identity_list.*$", "", (ROOT / "ansible.cfg").read_text())
    config = folder / "ansible.cfg"
    config.write_text(re.sub(r"(?m)^(\w+_plugins) = (plugins/\S+)$", rf"\1 = {ROOT}/\2", text))
    return config
