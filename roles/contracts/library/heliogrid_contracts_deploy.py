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
            "receipt_timeout": {"type": "int", "default": 180},
        },
        supports_check_mode=True,
    )
    params = module.params
    contracts_dir = Path(params["contracts_dir"])
    try:
        from heliogrid_contracts.deploy import Deployer, DeployError, DeploySpec
        from heliogrid_contracts.rpc import connect
    except ImportError as exc:
        module.fail_json(
            msg=f"cannot import heliogrid_contracts for {sys.executable} (make venv installs it): {exc}",
            actions=[],
        )

    deployer = None
    w3 = None
    try:
        spec = DeploySpec.from_dict(
            {
                key: params[key]
                for key in (
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
                )
            }
        )
        w3 = connect(params["rpc_url"], via=params["rpc_via"] or None, timeout=params["receipt_timeout"])
        deployer = Deployer(
            w3,
            params["private_key"],
            Path(params["record_path"]),
            build_dir=contracts_dir / "build",
            check_mode=module.check_mode,
            receipt_timeout=params["receipt_timeout"],
        )
        result = deployer.run(spec)
    except DeployError as exc:
        done = deployer.result.actions if deployer else []
        module.fail_json(msg=str(exc), actions=done)
    except Exception as exc:  # RPC down, relay failure, timeouts: report with context, never the key
        done = deployer.result.actions if deployer else []
        module.fail_json(
            msg=f"{type(exc).__name__}: {exc}", actions=done, exception="".join(traceback.format_exception(exc))
        )
    finally:
        if w3 is not None and hasattr(w3.provider, "close"):
            w3.provider.close()
    module.exit_json(changed=result.changed, actions=result.actions, notices=result.warnings, record=result.record)


if __name__ == "__main__":
    main()
