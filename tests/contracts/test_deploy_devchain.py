"""The deploy against real geth v1.13.15 (single-sealer Clique, London rules), the lab chain's software."""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from heliogrid_contracts.deploy import Deployer, DeploySpec
from heliogrid_contracts.rpc import connect

from tests.support.devchain import SEALER_KEY
from tests.support.fixtures import devchain  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.slow

METER_KEY = "0x" + "4d" * 32  # throwaway test key
OWNER = "0x" + "0e" * 20


def test_deploy_on_clique_geth_is_idempotent_and_the_meter_can_report(devchain, tmp_path) -> None:  # noqa: F811
    meter = Account.from_key(METER_KEY)
    wanted = DeploySpec.from_dict(
        {
            "token_name": "Helio kWh",
            "token_symbol": "HKWH",
            "tariff": 10**18,
            "tolerance_percent": 10,
            "meters": [{"address": meter.address, "owner": OWNER, "capacity_watts": 3_600_000}],
            "meter_min_balance_wei": 10**17,
            "meter_fund_wei": 10**18,
        }
    )
    w3 = connect(devchain.rpc_url)
    record = tmp_path / "contracts.json"
    first = Deployer(w3, SEALER_KEY, record).run(wanted)
    assert first.changed
    assert Deployer(w3, SEALER_KEY, record).run(wanted).actions == []
    assert Deployer(w3, SEALER_KEY, record, check_mode=True).run(wanted).changed is False

    market = w3.eth.contract(address=first.record["market"]["address"], abi=first.record["market"]["abi"])
    # At 3.6 MW capacity every second since the registration allows 1 kWh (plus 10 %); the funding transaction
    # already came a block later, so this only waits if the chain has not moved on yet.
    registered_at = market.functions.getMeter(meter.address).call()[3]
    deadline = time.monotonic() + 60
    while w3.eth.get_block("latest")["timestamp"] < registered_at + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    tx = market.functions.reportProduction(1000).build_transaction(
        {"from": meter.address, "nonce": w3.eth.get_transaction_count(meter.address)}
    )
    tx_hash = w3.eth.send_raw_transaction(meter.sign_transaction(tx).raw_transaction)
    assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)["status"] == 1
    token = w3.eth.contract(address=first.record["token"]["address"], abi=first.record["token"]["abi"])
    assert token.functions.balanceOf(w3.to_checksum_address(OWNER)).call() == 10**18
