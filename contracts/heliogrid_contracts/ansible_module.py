"""What the contracts role's Ansible modules share once their options are checked: connect to the node, run the
deployer or the admin, and answer Ansible, with the actions done so far on a failure and never the key.

The modules (roles/contracts/library/) run on the controller, in the Python that runs ansible-playbook, where
`make venv` installs this package.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from heliogrid_contracts.admin import Admin, AdminSpec
from heliogrid_contracts.deploy import Deployer, DeployError, DeploySpec
from heliogrid_contracts.rpc import connect

# Each runner (built on a connection and a key, run on a spec, keeping what it did in `result`) and its spec.
RUNNERS: dict[str, tuple[Any, Any]] = {"deploy": (Deployer, DeploySpec), "admin": (Admin, AdminSpec)}


def run_module(module: Any, runner: str, wanted: tuple[str, ...]) -> None:
    """Build the runner's spec from the `wanted` options, connect, run, and exit the module: changed, actions,
    notices and the deployment record.

    `module` is the AnsibleModule, whose options include rpc_url, rpc_via, private_key, record_path, contracts_dir
    and receipt_timeout. A bad spec or a refused action fails with its message; anything else (RPC down, relay
    failure, timeouts) fails with its type and traceback.
    """
    params = module.params
    make_runner, make_spec = RUNNERS[runner]
    running = None
    w3 = None
    try:
        spec = make_spec.from_dict({key: params[key] for key in wanted})
        w3 = connect(params["rpc_url"], via=params["rpc_via"] or None, timeout=params["receipt_timeout"])
        running = make_runner(
            w3,
            params["private_key"],
            Path(params["record_path"]),
            build_dir=Path(params["contracts_dir"]) / "build",
            check_mode=module.check_mode,
            receipt_timeout=params["receipt_timeout"],
        )
        result = running.run(spec)
    except DeployError as exc:
        module.fail_json(msg=str(exc), actions=running.result.actions if running else [])
    except Exception as exc:  # report with context, never the key (the option is no_log)
        module.fail_json(
            msg=f"{type(exc).__name__}: {exc}",
            actions=running.result.actions if running else [],
            exception="".join(traceback.format_exception(exc)),
        )
    finally:
        if w3 is not None and hasattr(w3.provider, "close"):
            w3.provider.close()
    module.exit_json(changed=result.changed, actions=result.actions, notices=result.warnings, record=result.record)
