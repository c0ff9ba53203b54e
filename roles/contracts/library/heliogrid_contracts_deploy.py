#!/usr/bin/python
"""Ansible module: deploy the HelioGrid contracts once and converge settings, meters and meter funding."""

from __future__ import annotations

DOCUMENTATION = r"""
module: heliogrid_contracts_deploy
short_description: Deploy EnergyToken and EnergyMarket once, register and fund the Pis' meters
description:
  - Runs heliogrid_contracts.deploy from the repository's contracts directory on the controller.
  - With a deployment record present the recorded addresses are verified (their code must match the
    recorded artifacts) and nothing is redeployed; a recorded address without that code fails.
  - Supports check mode (nothing is sent; the planned actions are returned).
options:
  contracts_dir:
    description: The repository's contracts directory, for its build/ artifacts (the code is the installed package).
    type: path
    required: true
  rpc_url:
    description: JSON-RPC URL of the node, as seen from where the relay runs (or from here).
    type: str
    required: true
  rpc_via:
    description: Command prefix running the relay on the RPC host; empty to connect directly.
    type: list
    elements: str
    default: []
  private_key:
    description: The deployer's private key (hex).
    type: str
    required: true
  record_path:
    description: Where the deployment record (addresses, ABI) is kept.
    type: path
    required: true
  token_name: {description: ERC-20 name., type: str, required: true}
  token_symbol: {description: ERC-20 symbol., type: str, required: true}
  tariff: {description: Token base units minted per credited kWh., type: int, required: true}
  tolerance_percent: {description: Allowed excess over capacity x elapsed time., type: int, required: true}
  admin:
    description: The contracts' admin address (not the deployer's); checked on chain on every run.
    type: str
    required: true
  admin_delay_seconds: {description: Seconds a new admin waits before accepting a handover., type: int, default: 172800}
  max_report_seconds: {description: Most elapsed time one meter report may count., type: int, default: 86400}
  meters:
    description: "Meters: address, owner, capacity_watts, optional active and name."
    type: list
    elements: dict
    default: []
  meter_min_balance_wei: {description: Top a meter up when its balance is below this., type: int, default: 0}
  meter_fund_wei: {description: Balance a meter is topped up to (0 disables funding)., type: int, default: 0}
  expected_chain_id: {description: Fail unless the node is on this chain., type: int}
  receipt_timeout: {description: Seconds to wait for each transaction receipt., type: int, default: 180}
"""

RETURN = r"""
actions: {description: What was done (or would be done in check mode)., type: list, returned: always}
notices:
  description: What the deployer found but may not change (tariff drift, a pending admin handover).
  type: list
  returned: always
record:
  description: The deployment record (chainId, token and market address/abi/block); null before a first
    deploy in check mode.
  type: dict
  returned: success
"""


from ansible.module_utils.basic import AnsibleModule  # noqa: E402 - Ansible modules put DOCUMENTATION first
from ansible.module_utils.heliogrid_contracts_module import CONNECTION_OPTIONS, run_contracts_module  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **CONNECTION_OPTIONS,
            "token_name": {"type": "str", "required": True},
            "token_symbol": {"type": "str", "required": True},
            "tariff": {"type": "int", "required": True},
            "tolerance_percent": {"type": "int", "required": True},
            "admin": {"type": "str", "required": True},
            "admin_delay_seconds": {"type": "int", "default": 172800},
            "max_report_seconds": {"type": "int", "default": 86400},
            "meters": {"type": "list", "elements": "dict", "default": []},
            "meter_min_balance_wei": {"type": "int", "default": 0},
            "meter_fund_wei": {"type": "int", "default": 0},
            "expected_chain_id": {"type": "int"},
        },
        supports_check_mode=True,
    )
    run_contracts_module(
        module,
        "deploy",
        (
            "token_name",
            "token_symbol",
            "tariff",
            "tolerance_percent",
            "admin",
            "admin_delay_seconds",
            "max_report_seconds",
            "meters",
            "meter_min_balance_wei",
            "meter_fund_wei",
            "expected_chain_id",
        ),
    )


if __name__ == "__main__":
    main()
