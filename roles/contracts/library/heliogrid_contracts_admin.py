#!/usr/bin/python
"""Ansible module: what only the contracts' admin may do (rotate the registrar, pause, set the tariff)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: heliogrid_contracts_admin
short_description: Rotate the registrar, pause or unpause the market, set tariff and tolerance, as the admin
description:
  - Runs heliogrid_contracts.admin from the repository's contracts directory on the controller, signing with the
    admin key (not the deployer's).
  - The contracts are the ones in the deployment record; their code and the admin are verified first.
  - Idempotent; supports check mode (nothing is sent; the planned actions are returned).
options:
  contracts_dir: {description: The repository's contracts directory (its build/ artifacts)., type: path, required: true}
  rpc_url: {description: JSON-RPC URL of the node, as seen from where the relay runs., type: str, required: true}
  rpc_via:
    description: Command prefix running the relay on the RPC host; empty to connect directly.
    type: list
    elements: str
    default: []
  private_key: {description: The admin's private key (hex)., type: str, required: true}
  record_path: {description: The deployment record., type: path, required: true}
  registrar:
    description: The only account left with REGISTRAR_ROLE; every other holder is revoked. Null leaves them.
    type: str
  paused: {description: Pause (true) or unpause (false) the market; null leaves it., type: bool}
  tariff: {description: Tariff to set; null leaves it., type: int}
  tolerance_percent: {description: Tolerance to set; null leaves it., type: int}
  minter_follows_record:
    description: Make the recorded market the token's only minter (after a market migration).
    type: bool
    default: false
  receipt_timeout: {description: Seconds to wait for each transaction receipt., type: int, default: 180}
"""

RETURN = r"""
actions: {description: What was done (or would be done in check mode)., type: list, returned: always}
notices: {description: What needs the operator (a new registrar without ether)., type: list, returned: success}
record: {description: The deployment record acted on., type: dict, returned: success}
"""

import sys  # noqa: E402 - Ansible modules put DOCUMENTATION first
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "contracts_dir": {"type": "path", "required": True},
            "rpc_url": {"type": "str", "required": True},
            "rpc_via": {"type": "list", "elements": "str", "default": []},
            "private_key": {"type": "str", "required": True, "no_log": True},
            "record_path": {"type": "path", "required": True},
            "registrar": {"type": "str"},
            "paused": {"type": "bool"},
            "tariff": {"type": "int"},
            "tolerance_percent": {"type": "int"},
            "minter_follows_record": {"type": "bool", "default": False},
            "receipt_timeout": {"type": "int", "default": 180},
        },
        supports_check_mode=True,
    )
    params = module.params
    contracts_dir = Path(params["contracts_dir"])
    try:
        from heliogrid_contracts.admin import Admin, AdminSpec
        from heliogrid_contracts.deploy import DeployError
        from heliogrid_contracts.rpc import connect
    except ImportError as exc:
        module.fail_json(
            msg=f"cannot import heliogrid_contracts for {sys.executable} (make venv installs it): {exc}",
            actions=[],
        )

    admin = None
    w3 = None
    try:
        wanted = ("registrar", "paused", "tariff", "tolerance_percent", "minter_follows_record")
        spec = AdminSpec.from_dict({key: params[key] for key in wanted})
        w3 = connect(params["rpc_url"], via=params["rpc_via"] or None, timeout=params["receipt_timeout"])
        admin = Admin(
            w3,
            params["private_key"],
            Path(params["record_path"]),
            build_dir=contracts_dir / "build",
            check_mode=module.check_mode,
            receipt_timeout=params["receipt_timeout"],
        )
        result = admin.run(spec)
    except DeployError as exc:
        module.fail_json(msg=str(exc), actions=admin.result.actions if admin else [])
    except Exception as exc:  # RPC down, relay failure, timeouts: report with context, never the key
        module.fail_json(
            msg=f"{type(exc).__name__}: {exc}",
            actions=admin.result.actions if admin else [],
            exception="".join(traceback.format_exception(exc)),
        )
    finally:
        if w3 is not None and hasattr(w3.provider, "close"):
            w3.provider.close()
    module.exit_json(changed=result.changed, actions=result.actions, notices=result.warnings, record=result.record)


if __name__ == "__main__":
    main()
