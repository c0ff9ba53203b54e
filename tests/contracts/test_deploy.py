"""Deployment: once, recorded, then idempotent; recorded addresses are verified, never silently replaced."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from eth_account import Account
from eth_tester import EthereumTester
from heliogrid_contracts.admin import Admin, AdminSpec
from heliogrid_contracts.deploy import Deployer, DeployError, DeploySpec, read_record
from heliogrid_contracts.rpc import connect
from web3 import EthereumTesterProvider, Web3

from heliogrid_testing.evm import paris_tester

METER_A = "0x" + "a1" * 20
METER_B = "0x" + "b2" * 20
OWNER = "0x" + "0e" * 20
ETHER = 10**18
# eth-tester's prefunded accounts have the keys 1, 2, 3...: the deployer is the first, the admin the sixth.
ADMIN_KEY = "0x" + "00" * 31 + "06"
ADMIN = Account.from_key(ADMIN_KEY).address
NEW_REGISTRAR_KEY = "0x" + "00" * 31 + "07"


def spec(*meters: dict, **changes) -> DeploySpec:
    data = {
        "token_name": "Helio kWh",
        "token_symbol": "HKWH",
        "tariff": ETHER,
        "tolerance_percent": 10,
        "admin": ADMIN,
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

    def run(self, wanted: DeploySpec, check_mode: bool = False, key: str | None = None):
        return Deployer(self.w3, key or self.key, self.record, check_mode=check_mode).run(wanted)

    def admin(self, wanted: AdminSpec, check_mode: bool = False, key: str = ADMIN_KEY):
        return Admin(self.w3, key, self.record, check_mode=check_mode).run(wanted)

    def market(self):
        record = read_record(self.record)
        return self.w3.eth.contract(address=record["market"]["address"], abi=record["market"]["abi"])

    def token(self):
        record = read_record(self.record)
        return self.w3.eth.contract(address=record["token"]["address"], abi=record["token"]["abi"])

    @property
    def deployer(self) -> str:
        return Account.from_key(self.key).address


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


def test_changed_tariff_and_tolerance_are_left_to_the_admin_with_a_warning(env: Env) -> None:
    env.run(spec())
    result = env.run(spec(tariff=5, tolerance_percent=3))
    assert (result.changed, result.actions) == (False, [])
    assert [w.split(",")[0] for w in result.warnings] == [
        f"the market's tariff is {ETHER}",
        "the market's tolerance_percent is 10",
    ]
    assert env.market().functions.tariff().call() == ETHER


def test_the_deployer_holds_only_the_registrar_role_and_the_admin_the_rest(env: Env) -> None:
    env.run(spec())
    market, token = env.market().functions, env.token().functions
    assert (market.defaultAdmin().call(), token.defaultAdmin().call()) == (ADMIN, ADMIN)
    assert market.hasRole(market.REGISTRAR_ROLE().call(), env.deployer).call()
    for contract, role in (
        (market, b"\x00" * 32),
        (market, market.TARIFF_ROLE().call()),
        (market, market.PAUSER_ROLE().call()),
        (token, b"\x00" * 32),
        (token, token.MINTER_ROLE().call()),
    ):
        assert not contract.hasRole(role, env.deployer).call()
    assert token.hasRole(token.MINTER_ROLE().call(), env.market().address).call()
    assert market.hasRole(market.PAUSER_ROLE().call(), ADMIN).call()
    assert read_record(env.record)["admin"] == ADMIN


def test_admin_that_is_the_deployer_is_refused_before_any_transaction(env: Env) -> None:
    with pytest.raises(DeployError, match=r"the admin .* is the deployer's own address"):
        env.run(spec(admin=env.deployer))
    assert env.w3.eth.block_number == 0


def test_an_admin_other_than_the_inventorys_is_an_error(env: Env) -> None:
    env.run(spec())
    with pytest.raises(DeployError, match=r"the admin of .* is 0x.*, the inventory says 0x0E0e"):
        env.run(spec(admin=OWNER))


def test_a_pending_admin_handover_is_a_warning(env: Env) -> None:
    env.run(spec())
    for contract in (env.token(), env.market()):
        env.w3.eth.wait_for_transaction_receipt(
            contract.functions.beginDefaultAdminTransfer(Web3.to_checksum_address(OWNER)).transact({"from": ADMIN})
        )
    result = env.run(spec(admin=OWNER))
    assert (result.changed, len(result.warnings)) == (False, 2)
    assert "admin handover to 0x0E0e" in result.warnings[0]


def test_surplus_roles_of_the_deployer_are_renounced(env: Env) -> None:
    env.run(spec())
    market = env.market()
    pauser = market.functions.PAUSER_ROLE().call()
    env.w3.eth.wait_for_transaction_receipt(market.functions.grantRole(pauser, env.deployer).transact({"from": ADMIN}))
    result = env.run(spec())
    assert result.actions == [f"renounce PAUSER_ROLE of the deployer {env.deployer} on {market.address}"]
    assert not market.functions.hasRole(pauser, env.deployer).call()
    assert env.run(spec()).changed is False


def test_tariff_above_the_bound_is_rejected_naming_the_value() -> None:
    with pytest.raises(DeployError, match=r"tariff: expected 0\.\.10{24}, got 10{24}1"):
        spec(tariff=10**25 + 1)
    with pytest.raises(DeployError, match=r"admin: the zero address is not allowed"):
        spec(admin="0x" + "00" * 20)
    with pytest.raises(DeployError, match=r"max_report_seconds: expected 1\.\.4294967295, got 0"):
        spec(max_report_seconds=0)


def test_changed_token_name_is_an_error(env: Env) -> None:
    env.run(spec())
    with pytest.raises(DeployError, match=r"name and symbol are fixed at deployment"):
        env.run(spec(token_name="Other"))


def test_capacity_conflicting_with_inventory_is_an_error(env: Env) -> None:
    env.run(spec(meter()))
    with pytest.raises(DeployError, match=r"registered with 5000 W; the inventory says 6000 W"):
        env.run(spec(meter(capacity=6000)))


def test_new_owner_in_inventory_moves_the_meter_once(env: Env) -> None:
    env.run(spec(meter()))
    address, new_owner = Web3.to_checksum_address(METER_A), Web3.to_checksum_address("0x" + "0f" * 20)
    result = env.run(spec({**meter(), "owner": new_owner}))
    assert result.actions == [f"move meter {address} from owner {Web3.to_checksum_address(OWNER)} to {new_owner}"]
    assert env.market().functions.getMeter(address).call()[0] == new_owner
    assert env.run(spec({**meter(), "owner": new_owner})).changed is False


def test_inactive_meter_in_inventory_is_deactivated_once(env: Env) -> None:
    env.run(spec(meter()))
    result = env.run(spec(meter(active=False)))
    assert result.actions == [f"deactivate meter {Web3.to_checksum_address(METER_A)}"]
    assert env.market().functions.getMeter(Web3.to_checksum_address(METER_A)).call()[2] is False
    assert env.run(spec(meter(active=False))).changed is False
    with pytest.raises(DeployError, match=r"cannot be reactivated"):
        env.run(spec(meter()))


def test_meter_spent_below_the_gas_floor_is_topped_up_and_one_above_it_left_alone(env: Env) -> None:
    meter_key = "0x" + "00" * 31 + "08"  # a prefunded eth-tester account stands in for a Pi's meter
    address = Account.from_key(meter_key).address
    wanted = spec(meter(address), meter_min_balance_wei=2 * ETHER, meter_fund_wei=3 * ETHER)
    env.run(wanted)
    balance = env.w3.eth.get_balance(address)
    assert balance >= 3 * ETHER
    assert env.run(wanted).changed is False  # above the floor: nothing sent
    # The meter spends its ether (gas): below the floor, the next run tops it up to the funding level.
    gas_price = env.w3.eth.gas_price
    spend = balance - ETHER - 21000 * gas_price
    env.w3.eth.wait_for_transaction_receipt(
        env.w3.eth.send_transaction({"from": address, "to": ADMIN, "value": spend, "gasPrice": gas_price})
    )
    assert env.w3.eth.get_balance(address) == ETHER
    result = env.run(wanted)
    assert result.actions == [f"fund meter {address} with {2 * ETHER} wei (balance {ETHER} -> {3 * ETHER})"]
    assert env.w3.eth.get_balance(address) == 3 * ETHER
    assert env.run(wanted).changed is False


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


def test_admin_rotates_the_registrar_and_the_old_deployer_key_is_refused(env: Env) -> None:
    env.run(spec(meter()))
    new = Account.from_key(NEW_REGISTRAR_KEY).address
    market = env.market()
    result = env.admin(AdminSpec(registrar=new))
    assert result.actions == [
        f"grant REGISTRAR_ROLE on {market.address} to {new}",
        f"revoke REGISTRAR_ROLE on {market.address} from {env.deployer}",
    ]
    assert env.admin(AdminSpec(registrar=new)).changed is False
    with pytest.raises(DeployError, match=r"does not hold REGISTRAR_ROLE .* rotated out"):
        env.run(spec(meter()))
    result = env.run(spec(meter(), meter(METER_B)), key=NEW_REGISTRAR_KEY)
    assert [a.split()[0] for a in result.actions] == ["register", "fund"]


def test_admin_pauses_and_unpauses_once(env: Env) -> None:
    env.run(spec())
    assert env.admin(AdminSpec(paused=True), check_mode=True).actions == ["would pause the market"]
    assert env.market().functions.paused().call() is False
    assert env.admin(AdminSpec(paused=True)).actions == ["pause the market"]
    assert env.admin(AdminSpec(paused=True)).changed is False
    assert env.admin(AdminSpec(paused=False, tariff=5)).actions == ["set tariff -> 5", "unpause the market"]
    assert env.market().functions.tariff().call() == 5


def test_a_key_that_is_not_the_admin_is_refused(env: Env) -> None:
    env.run(spec())
    with pytest.raises(DeployError, match=r"is not the admin of"):
        env.admin(AdminSpec(paused=True), key=env.key)
    assert env.market().functions.paused().call() is False
