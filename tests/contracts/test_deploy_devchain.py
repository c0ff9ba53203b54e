"""The deploy, the rotation of the deployer key and the market's upgrade path against real geth 1.13
(single-sealer Clique, London rules), the lab chain's software."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from eth_account import Account
from heliogrid_contracts.admin import Admin, AdminSpec
from heliogrid_contracts.deploy import Deployer, DeployError, DeploySpec
from heliogrid_contracts.migrate import Migrator
from heliogrid_contracts.rpc import connect
from web3 import Web3
from web3.logs import DISCARD

from heliogrid_testing import ROOT
from heliogrid_testing.chainkit import settled
from heliogrid_testing.devchain import SEALER_KEY
from heliogrid_testing.fixtures import devchain  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.slow

METER_KEY = "0x" + "4d" * 32  # throwaway test keys
ADMIN_KEY = "0x" + "ad" * 32
NEW_REGISTRAR_KEY = "0x" + "7e" * 32
OWNER = "0x" + "0e" * 20
ETHER = 10**18
ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or "ansible-playbook"


def wanted(*meters: str) -> DeploySpec:
    return DeploySpec.from_dict(
        {
            "token_name": "Helio kWh",
            "token_symbol": "HKWH",
            "tariff": ETHER,
            "tolerance_percent": 10,
            "admin": Account.from_key(ADMIN_KEY).address,
            "meters": [{"address": m, "owner": OWNER, "capacity_watts": 3_600_000} for m in meters],
            "meter_min_balance_wei": ETHER // 10,
            "meter_fund_wei": ETHER,
        }
    )


def send(w3: Web3, key: str, tx: dict) -> dict:
    account = Account.from_key(key)
    tx = {**tx, "from": account.address, "nonce": w3.eth.get_transaction_count(account.address, "pending")}
    tx.setdefault("gas", w3.eth.estimate_gas(tx))
    if "maxFeePerGas" not in tx:
        tx.setdefault("gasPrice", w3.eth.gas_price)
    tx["chainId"] = w3.eth.chain_id
    receipt = settled(w3, w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction))
    assert receipt["status"] == 1, receipt
    return receipt


def report(w3: Web3, market, total_wh: int) -> dict:
    """The meter reports `total_wh` once the chain's clock allows it (3.6 MW: 1 kWh per second, +10 %)."""
    meter = Account.from_key(METER_KEY)
    since = max(market.functions.getMeter(meter.address).call()[3:5])
    deadline = time.monotonic() + 60
    while w3.eth.get_block("latest")["timestamp"] < since + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    return send(w3, METER_KEY, market.functions.reportProduction(total_wh).build_transaction({"from": meter.address}))


def test_deploy_on_clique_geth_is_idempotent_and_the_meter_can_report(devchain, tmp_path) -> None:  # noqa: F811
    meter = Account.from_key(METER_KEY)
    others = [Account.create().address for _ in range(2)]
    spec = wanted(meter.address, *others)
    w3 = connect(devchain.rpc_url)
    record = tmp_path / "contracts.json"
    start = w3.eth.block_number
    first = Deployer(w3, SEALER_KEY, record).run(spec)
    assert first.changed
    # The three registrations and fundings do not wait for each other: they share a block, or two when the sealer
    # closed one while they were being sent (one by one, they took six).
    deployer = Account.from_key(SEALER_KEY).address
    meter_blocks = {
        n
        for n in range(start, w3.eth.block_number + 1)
        for tx in w3.eth.get_block(n, full_transactions=True).transactions
        if tx["from"] == deployer and tx["to"] is not None
    }
    assert 1 <= len(meter_blocks) <= 2, meter_blocks
    assert all(market_meter_registered(w3, first.record, a) for a in [meter.address, *others])
    assert [w3.eth.get_balance(a) for a in others] == [ETHER, ETHER]
    assert Deployer(w3, SEALER_KEY, record).run(spec).actions == []
    assert Deployer(w3, SEALER_KEY, record, check_mode=True).run(spec).changed is False

    market = w3.eth.contract(address=first.record["market"]["address"], abi=first.record["market"]["abi"])
    # At 3.6 MW capacity every second since the registration allows 1 kWh (plus 10 %): this waits for the next block
    # if the chain has not moved on since the registration.
    registered_at = market.functions.getMeter(meter.address).call()[3]
    deadline = time.monotonic() + 60
    while w3.eth.get_block("latest")["timestamp"] < registered_at + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    tx = market.functions.reportProduction(1000).build_transaction(
        {"from": meter.address, "nonce": w3.eth.get_transaction_count(meter.address)}
    )
    tx_hash = w3.eth.send_raw_transaction(meter.sign_transaction(tx).raw_transaction)
    assert settled(w3, tx_hash)["status"] == 1
    token = w3.eth.contract(address=first.record["token"]["address"], abi=first.record["token"]["abi"])
    assert token.functions.balanceOf(w3.to_checksum_address(OWNER)).call() == 10**18


def market_meter_registered(w3: Web3, record: dict, address: str) -> bool:
    market = w3.eth.contract(address=record["market"]["address"], abi=record["market"]["abi"])
    return market.functions.getMeter(address).call()[3] != 0


def admin_inventory(tmp_path: Path, rpc_url: str) -> Path:
    hosts = {
        "all": {
            "vars": {"heliogrid_state_dir": str(tmp_path / "state"), "contracts_rpc_url": rpc_url},
            "children": {
                "deployer": {
                    "hosts": {
                        "localhost": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": sys.executable,
                            "contracts_admin_private_key": ADMIN_KEY,
                            "contracts_rpc_via": [],
                        }
                    }
                },
                "stats": {"hosts": {"stats1": {"ansible_connection": "local"}}},
            },
        }
    }
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(hosts))
    return path


def play(inventory: Path, playbook: str, *args: str) -> tuple[int, str]:
    """Run a playbook; return the deployer's changed count and the output."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_CACHE_PLUGIN": "memory"}
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(ROOT / "playbooks" / playbook), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    assert ADMIN_KEY.removeprefix("0x") not in output
    changed = re.search(r"^localhost\s*:\s*ok=\d+\s+changed=(\d+)", proc.stdout, re.MULTILINE)
    assert changed, output[-3000:]
    return int(changed.group(1)), output


def test_rotate_deployer_playbook_cuts_the_old_key_off(devchain, tmp_path) -> None:  # noqa: F811
    w3 = connect(devchain.rpc_url)
    record = tmp_path / "state" / "contracts.json"
    meter = Account.from_key(METER_KEY).address
    Deployer(w3, SEALER_KEY, record).run(wanted(meter))
    admin, new = Account.from_key(ADMIN_KEY).address, Account.from_key(NEW_REGISTRAR_KEY).address
    send(w3, SEALER_KEY, {"to": admin, "value": ETHER})  # the admin pays for its own transactions
    inventory = admin_inventory(tmp_path, devchain.rpc_url)

    changed, output = play(inventory, "rotate_deployer.yml", "-e", f"contracts_admin_registrar={new}")
    assert changed == 1
    assert f"revoke REGISTRAR_ROLE on {json.loads(record.read_text())['market']['address']} from " in output
    assert "holds no ether" in output  # the new key still needs funding
    assert play(inventory, "rotate_deployer.yml", "-e", f"contracts_admin_registrar={new}")[0] == 0

    with pytest.raises(DeployError, match=r"rotated out"):
        Deployer(w3, SEALER_KEY, record).run(wanted(meter))
    recorded = json.loads(record.read_text())["market"]
    market = w3.eth.contract(address=recorded["address"], abi=recorded["abi"])
    role = market.functions.REGISTRAR_ROLE().call()
    assert market.functions.hasRole(role, new).call()
    assert not market.functions.hasRole(role, devchain.sealer.address).call()
    send(w3, SEALER_KEY, {"to": new, "value": 10 * ETHER})
    second = Account.from_key("0x" + "5d" * 32).address
    result = Deployer(w3, NEW_REGISTRAR_KEY, record).run(wanted(meter, second))
    assert [a.split()[0] for a in result.actions] == ["register", "fund"]


def test_market_upgrade_by_redeployment_keeps_balances_and_totals(devchain, tmp_path) -> None:  # noqa: F811
    w3 = connect(devchain.rpc_url)
    record = tmp_path / "contracts.json"
    meter = Account.from_key(METER_KEY).address
    spec = wanted(meter)
    first = Deployer(w3, SEALER_KEY, record).run(spec).record
    send(w3, SEALER_KEY, {"to": Account.from_key(ADMIN_KEY).address, "value": ETHER})
    abi = first["market"]["abi"]
    old = w3.eth.contract(address=first["market"]["address"], abi=abi)
    token = w3.eth.contract(address=first["token"]["address"], abi=first["token"]["abi"])
    report(w3, old, 1500)
    owner = Web3.to_checksum_address(OWNER)
    assert token.functions.balanceOf(owner).call() == ETHER

    with pytest.raises(DeployError, match=r"is not paused: the admin pauses it first"):
        Migrator(w3, SEALER_KEY, record).run(spec)
    assert Admin(w3, ADMIN_KEY, record).run(AdminSpec(paused=True)).actions == ["pause the market"]
    moved = Migrator(w3, SEALER_KEY, record).run(spec)
    assert [a.split()[0] for a in moved.actions] == ["deploy", "import"]
    assert Migrator(w3, SEALER_KEY, record).run(spec).actions == []  # a re-run deploys and imports nothing
    new = w3.eth.contract(address=moved.record["market"]["address"], abi=abi)
    assert new.address != old.address
    assert moved.record["token"]["address"] == token.address
    assert new.functions.getMeter(meter).call()[5:] == (1500, 1)

    with pytest.raises(DeployError, match=r"does not hold MINTER_ROLE"):
        Deployer(w3, SEALER_KEY, record).run(spec)
    handover = Admin(w3, ADMIN_KEY, record).run(AdminSpec(minter_follows_record=True)).actions
    assert handover == [
        f"grant MINTER_ROLE on {token.address} to {new.address}",
        f"revoke MINTER_ROLE on {token.address} from {old.address}",
    ]
    assert Deployer(w3, SEALER_KEY, record).run(spec).changed is False

    receipt = report(w3, new, 2600)  # the meter's cumulative total goes on: only the new kWh is credited
    credited = new.events.ProductionReported().process_receipt(receipt, errors=DISCARD)[0]["args"]["creditedKWh"]
    assert credited == 1
    assert token.functions.balanceOf(owner).call() == 2 * ETHER
    minter = token.functions.MINTER_ROLE().call()
    assert not token.functions.hasRole(minter, old.address).call()
