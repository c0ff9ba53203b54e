"""roles/contracts through playbooks/contracts.yml against an in-process chain behind a loopback JSON-RPC."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from web3 import Web3

from heliogrid_testing import ROOT

pytestmark = pytest.mark.slow

ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or shutil.which(
    "ansible-playbook"
)
DEPLOYER_KEY = "0x" + "00" * 31 + "01"  # eth-tester's first prefunded account: a public test key
ADMIN = "0x" + "ad" * 20  # the contracts' admin: another account, whose key the deploy never sees
OWNER = "0x" + "0e" * 20
METERS = {"pi-a": "0x" + "a1" * 20, "pi-b": "0x" + "b2" * 20}
DEPLOYER_SETTINGS = {"contracts_tariff": 3 * 10**17, "contracts_tolerance_percent": 25}


def inventory(tmp_path: Path, rpc_url: str) -> Path:
    pis = {
        name: {"pi_agent_meter_address": address, "pi_agent_owner_address": OWNER, "pi_agent_capacity_watts": 4000}
        for name, address in METERS.items()
    }
    hosts = {
        "all": {
            "vars": {"heliogrid_state_dir": str(tmp_path / "state"), "contracts_rpc_url": rpc_url},
            "children": {
                "deployer": {
                    "hosts": {
                        "localhost": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": sys.executable,
                            "contracts_deployer_private_key": DEPLOYER_KEY,
                            "contracts_admin_address": ADMIN,
                            "contracts_rpc_via": [],
                        }
                    },
                    # Settings an operator keeps with the deployer: a run limited to a Pi must deploy with them too.
                    "vars": DEPLOYER_SETTINGS,
                },
                "stats": {"hosts": {"stats1": {"ansible_connection": "local"}}},
                "pis": {"hosts": pis},
            },
        }
    }
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(hosts))
    return path


def play(inventory_path: Path, *args: str) -> dict[str, int]:
    """Run playbooks/contracts.yml; return the recap counters summed over the hosts (the work is run_once)."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_CACHE_PLUGIN": "memory",
    }
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inventory_path), str(ROOT / "playbooks" / "contracts.yml"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert DEPLOYER_KEY.removeprefix("0x") not in proc.stdout + proc.stderr
    recap = re.findall(r"^\S+\s*:\s*ok=(\d+)\s+changed=(\d+)", proc.stdout, re.MULTILINE)
    assert recap, proc.stdout[-3000:]
    return {"ok": sum(int(ok) for ok, _ in recap), "changed": sum(int(changed) for _, changed in recap)}


@pytest.mark.skipif(ANSIBLE_PLAYBOOK is None, reason="ansible-playbook is not installed in this environment")
def test_playbook_deploys_once_then_changes_nothing_and_registers_a_new_pi_with_limit(tmp_path, loopback_rpc):
    inv = inventory(tmp_path, loopback_rpc)
    record_path = tmp_path / "state" / "contracts.json"

    check = play(inv, "--check", "--limit", "pi-a")
    assert check["changed"] >= 1
    assert not record_path.exists()

    first = play(inv, "--limit", "pi-a")
    assert first["changed"] >= 1
    record = json.loads(record_path.read_text())
    w3 = Web3(Web3.HTTPProvider(loopback_rpc))
    market = w3.eth.contract(address=record["market"]["address"], abi=record["market"]["abi"])
    meter_a, meter_b = (Web3.to_checksum_address(a) for a in METERS.values())
    assert market.functions.getMeter(meter_a).call()[:3] == (Web3.to_checksum_address(OWNER), 4000, True)
    assert market.functions.getMeter(meter_b).call()[3] == 0  # pi-b was not in this run
    settings = (market.functions.tariff().call(), market.functions.tolerancePercent().call())
    assert settings == (DEPLOYER_SETTINGS["contracts_tariff"], DEPLOYER_SETTINGS["contracts_tolerance_percent"])
    assert w3.eth.get_balance(meter_a) > 0
    token = w3.eth.contract(address=record["token"]["address"], abi=record["token"]["abi"])
    assert (
        market.functions.defaultAdmin().call()
        == token.functions.defaultAdmin().call()
        == Web3.to_checksum_address(ADMIN)
    )

    assert play(inv, "--limit", "pi-a")["changed"] == 0
    assert play(inv, "--check")["changed"] >= 1  # pi-b would be registered

    play(inv)
    assert market.functions.getMeter(meter_b).call()[2] is True
    assert play(inv)["changed"] == 0
