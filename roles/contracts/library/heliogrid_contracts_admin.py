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


from ansible.module_utils.basic import AnsibleModule  # noqa: E402 - Ansible modules put DOCUMENTATION first
from ansible.module_utils.heliogrid_contracts_module import CONNECTION_OPTIONS, run_contracts_module  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **CONNECTION_OPTIONS,
            "registrar": {"type": "str"},
            "paused": {"type": "bool"},
            "tariff": {"type": "int"},
            "tolerance_percent": {"type": "int"},
            "minter_follows_record": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    run_contracts_module(
        module, "admin", ("registrar", "paused", "tariff", "tolerance_percent", "minter_follows_record")
    )


if __name__ == "__main__":
    main()
