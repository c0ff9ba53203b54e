"""Deployment: once, recorded, then idempotent; recorded addresses are verified, never silently replaced."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import paris_tester
from eth_tester import EthereumTester
from heliogrid_contracts.deploy import Deployer, DeployError, DeploySpec, read_record
from heliogrid_contracts.rpc import connect
from web3 import EthereumTesterProvider, Web3

METER_A = "0x" + "a1" * 20
METER_B = "0x" + "b2" * 20
OWNER = "0x" + "0e" * 20
ETHER = 10**18


def spec(*meters: dict, **changes) -> DeploySpec:
    data = {
        "token_name": "Helio kWh",
        "token_symbol": "HKWH",
        "tariff": ETHER,
        "tolerance_percent": 10,
        "meters": list(meters),
        "meter_min_balance_wei": ETHER // 10,
        "meter_fund_wei": ETHER,
    }
    data.update(changes)
    return DeploySpec.from_dict(data)


def meter(address: str = METER_A, capacity: int = 5000, **extra) -> dict:
    return {"address": address, "owner": OWNER, "capacity_watts": capacity, **extra}


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.tester: EthereumTester = paris_tester()
        self.w3 = Web3(EthereumTesterProvider(self.tester))
        self.key = self.tester.backend.account_keys[0].to_hex()
        self.record = tmp_path / "state" / "contracts.json"

    def run(self, wanted: DeploySpec, check_mode: bool = False):
        return Deployer(self.w3, self.key, self.record, check_mode=check_mode).run(wanted)

    def market(self):
        record = read_record(self.record)
        return self.w3.eth.contract(address=record["market"]["address"], abi=record["market"]["abi"])


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def test_first_run_deploys_records_registers_and_funds(env: Env) -> None:
    result = env.run(spec(meter()))
    assert result.changed
    record = json.loads(env.record.read_text())
    assert record["chainId"] == env.w3.eth.chain_id
    assert set(record) >= {"chainId", "token", "market"}
    assert record["market"]["block"] >= 1
    assert {i.get("name") for i in record["market"]["abi"]} >= {"reportProduction", "buy", "getMeter"}
    assert env.record.stat().st_mode & 0o777 == 0o644
    assert env.market().functions.getMeter(Web3.to_checksum_address(METER_A)).call()[:3] == (
        Web3.to_checksum_address(OWNER),
        5000,
        True,
    )
    assert env.w3.eth.get_balance(Web3.to_checksum_address(METER_A)) == ETHER


def test_second_run_changes_nothing(env: Env) -> None:
    env.run(spec(meter()))
    before = env.record.read_text()
    block = env.w3.eth.block_number
    result = env.run(spec(meter()))
    assert (result.changed, result.actions) == (False, [])
    assert env.record.read_text() == before
    assert env.w3.eth.block_number == block  # not one transaction sent


def test_check_mode_reports_the_plan_and_sends_nothing(env: Env) -> None:
    result = env.run(spec(meter()), check_mode=True)
    assert result.changed
    assert [a.split()[1] for a in result.actions] == ["deploy", "register", "fund"]
    assert all(a.startswith("would ") for a in result.actions)
    assert not env.record.exists()
    assert env.w3.eth.block_number == 0


def test_a_meter_added_later_is_registered_and_the_rest_left_alone(env: Env) -> None:
    env.run(spec(meter()))
    result = env.run(spec(meter(), meter(METER_B, capacity=800)))
    assert [a.split()[0] for a in result.actions] == ["register", "fund"]
    assert METER_B.lower() in result.actions[0].lower()


def test_recorded_address_without_code_is_an_error(env: Env, tmp_path: Path) -> None:
    env.run(spec())
    # Same record, fresh chain: as after a chain reset or when pointed at the wrong node.
    fresh = Env(tmp_path)
    with pytest.raises(DeployError, match=r"has no code there .* Not redeploying silently"):
        fresh.run(spec())
    assert fresh.w3.eth.block_number == 0


def test_recorded_address_with_other_code_is_an_error(env: Env) -> None:
    env.run(spec())
    record = json.loads(env.record.read_text())
    record["market"]["address"], record["token"]["address"] = record["token"]["address"], record["market"]["address"]
    env.record.write_text(json.dumps(record))
    with pytest.raises(DeployError, match=r"differs from contracts/build/EnergyToken.json"):
        env.run(spec())


def test_record_from_another_chain_is_an_error(env: Env) -> None:
    env.run(spec())
    record = json.loads(env.record.read_text())
    record["chainId"] = 999
    env.record.write_text(json.dumps(record))
    with pytest.raises(DeployError, match=r"record .* is for chain 999, the node is on chain"):
        env.run(spec())


def test_unexpected_chain_id_stops_before_any_transaction(env: Env) -> None:
    with pytest.raises(DeployError, match=r"expected chain 4242"):
        env.run(spec(expected_chain_id=4242))
    assert env.w3.eth.block_number == 0


def test_changed_tariff_and_tolerance_are_converged(env: Env) -> None:
    env.run(spec())
    result = env.run(spec(tariff=5, tolerance_percent=3))
    assert result.actions == [f"set tariff {ETHER} -> 5", "set tolerance 10% -> 3%"]
    assert env.market().functions.tariff().call() == 5
    assert env.market().functions.tolerancePercent().call() == 3


def test_changed_token_name_is_an_error(env: Env) -> None:
    env.run(spec())
    with pytest.raises(DeployError, match=r"name and symbol are fixed at deployment"):
        env.run(spec(token_name="Other"))


def test_registration_conflicting_with_inventory_is_an_error(env: Env) -> None:
    env.run(spec(meter()))
    with pytest.raises(DeployError, match=r"registered with owner .* and 5000 W; the inventory says .* 6000 W"):
        env.run(spec(meter(capacity=6000)))


def test_inactive_meter_in_inventory_is_deactivated_once(env: Env) -> None:
    env.run(spec(meter()))
    result = env.run(spec(meter(active=False)))
    assert result.actions == [f"deactivate meter {Web3.to_checksum_address(METER_A)}"]
    assert env.market().functions.getMeter(Web3.to_checksum_address(METER_A)).call()[2] is False
    assert env.run(spec(meter(active=False))).changed is False
    with pytest.raises(DeployError, match=r"cannot be reactivated"):
        env.run(spec(meter()))


def test_meter_below_minimum_balance_is_topped_up(env: Env) -> None:
    env.run(spec(meter()))
    address = Web3.to_checksum_address(METER_A)
    assert env.w3.eth.get_balance(address) == ETHER
    result = env.run(spec(meter(), meter_min_balance_wei=2 * ETHER, meter_fund_wei=3 * ETHER))
    assert result.actions == [f"fund meter {address} with {2 * ETHER} wei (balance {ETHER} -> {3 * ETHER})"]
    assert env.w3.eth.get_balance(address) == 3 * ETHER


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"address": "0x1234"},
            r"meters\[0\] \(pi9\)\.address: expected a 0x-prefixed 20-byte hex address, got '0x1234'",
        ),
        ({"owner": "0x" + "00" * 20}, r"meters\[0\] \(pi9\)\.owner: the zero address is not allowed"),
        ({"capacity_watts": 0}, r"capacity_watts: expected 1\.\.4294967295, got 0"),
        ({"capacity_watts": "lots"}, r"capacity_watts: expected an integer, got 'lots'"),
        ({"active": "no"}, r"active: expected true or false, got 'no'"),
        ({"colour": "red"}, r"unknown keys \['colour'\]"),
    ],
)
def test_bad_meter_entry_is_rejected_naming_the_value(bad: dict, message: str) -> None:
    with pytest.raises(DeployError, match=message):
        spec(meter(name="pi9", **bad))


def test_bad_settings_are_rejected_naming_the_value() -> None:
    with pytest.raises(DeployError, match=r"tolerance_percent: expected 0\.\.100, got 150"):
        spec(tolerance_percent=150)
    with pytest.raises(DeployError, match=r"token_symbol: expected a non-empty string"):
        spec(token_symbol=" ")
    with pytest.raises(DeployError, match=r"is listed twice"):
        spec(meter(), meter(METER_A.upper().replace("0X", "0x")))


def test_bad_private_key_error_does_not_echo_it(env: Env) -> None:
    secret = "0x" + "zz" * 32
    with pytest.raises(DeployError) as info:
        Deployer(env.w3, secret, env.record)
    assert "zz" not in str(info.value)


def test_relay_command_reaches_a_loopback_rpc(loopback_rpc: str) -> None:
    # In the lab `via` is `podman exec -i hg-stats1`; here the relay runs locally with this Python.
    w3 = connect(loopback_rpc, via=["env"])
    w3.provider.command[w3.provider.command.index("python3")] = sys.executable
    try:
        assert w3.eth.chain_id == Web3(Web3.HTTPProvider(loopback_rpc)).eth.chain_id
        assert w3.eth.get_balance(w3.eth.accounts[0]) > 0
        assert w3.eth.get_block("latest")["number"] == 0
    finally:
        w3.provider.close()


def test_relay_that_cannot_start_fails_clearly() -> None:
    w3 = connect("http://127.0.0.1:9", via=["/nonexistent/podman", "exec", "-i", "hg-x"])
    with pytest.raises(ConnectionError, match=r"cannot start RPC relay /nonexistent/podman exec -i hg-x"):
        w3.eth.chain_id  # noqa: B018
