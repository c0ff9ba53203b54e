"""What the contracts role's two modules share: the options that reach the node and the deployment record, and
the run itself, from the installed heliogrid_contracts package (heliogrid_contracts/ansible_module.py)."""

from __future__ import annotations

import sys
from typing import Any

CONNECTION_OPTIONS: dict[str, dict[str, Any]] = {
    "contracts_dir": {"type": "path", "required": True},
    "rpc_url": {"type": "str", "required": True},
    "rpc_via": {"type": "list", "elements": "str", "default": []},
    "private_key": {"type": "str", "required": True, "no_log": True},
    "record_path": {"type": "path", "required": True},
    "receipt_timeout": {"type": "int", "default": 180},
}


def run_contracts_module(module: Any, runner: str, wanted: tuple[str, ...]) -> None:
    """Run the package's `runner` ("deploy" or "admin") on the module's `wanted` options, and exit the module."""
    try:
        from heliogrid_contracts.ansible_module import run_module
    except ImportError as exc:
        module.fail_json(
            msg=f"cannot import heliogrid_contracts for {sys.executable} (make venv installs it): {exc}",
            actions=[],
        )
    run_module(module, runner, wanted)
