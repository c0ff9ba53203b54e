"""The project's ansible.cfg for Ansible runs in a scratch folder (inventory rendering tests)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def scratch_config(folder: Path) -> Path:
    """Write the project's ansible.cfg into `folder` and return its path: without the lab's vault password script,
    and with its plugin folders (the Mitogen strategy among them), which are relative to the file, named from the
    repository."""
    text = re.sub(r"(?m)^vault_identity_list.*$", "", (ROOT / "ansible.cfg").read_text())
    config = folder / "ansible.cfg"
    config.write_text(re.sub(r"(?m)^(\w+_plugins) = (plugins/\S+)$", rf"\1 = {ROOT}/\2", text))
    return config


def show(folder: Path, inventories: list[str], pattern: str, expression: str, *extra: str) -> dict[str, object]:
    """Render `expression` (a Jinja expression giving JSON) for each host of `pattern`, with Ansible run in `folder`
    on the given inventory sources and the project's configuration; returns the decoded value by host."""
    config = scratch_config(folder)
    command = [str(Path(sys.executable).parent / "ansible"), *(f"-i{i}" for i in inventories), pattern]
    command += ["-m", "ansible.builtin.debug", "--one-line", "-a", f"msg={{{{ {expression} | to_json }}}}", *extra]
    result = subprocess.run(
        command,
        cwd=folder,
        env={"ANSIBLE_CONFIG": str(config), "HELIOGRID_NETWORK": "solar", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = {}
    for line in result.stdout.splitlines():
        host, _, rest = line.partition(" | SUCCESS => ")
        if rest:
            found[host] = json.loads(json.loads(rest)["msg"])
    return found
