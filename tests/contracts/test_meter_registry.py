"""Meter registry: the registrar registers and deactivates meters; only active meters report."""

from __future__ import annotations

import pytest

from heliogrid_testing.evm import CAPACITY, KWH, Chain, error_data

ZERO = "0x" + "00" * 20


def test_registrar_registers_meter_with_owner_and_capacity(chain: Chain) -> None:
    receipt = chain.send(chain.market.functions.registerMeter(chain.meter, chain.owner, 5000), chain.registrar)
    registered_at = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert chain.events(receipt, chain.market, "MeterRegistered") == [
        {"meter": chain.meter, "owner": chain.owner, "capacityWatts": 5000}
    ]
    assert chain.market.functions.getMeter(chain.meter).call() == (chain.owner, 5000, True, registered_at, 0, 0, 0)


def test_unregistered_meter_reads_as_zero_registration(chain: Chain) -> None:
    assert chain.market.functions.getMeter(chain.outsider).call() == (ZERO, 0, False, 0, 0, 0, 0)


def test_registering_a_registered_meter_reverts(chain: Chain) -> None:
    chain.register()
    chain.reverts(
        chain.market.functions.registerMeter(chain.meter, chain.buyer, 100),
        chain.registrar,
        error_data(chain.market, "MeterAlreadyRegistered", chain.meter),
    )
    assert chain.market.functions.getMeter(chain.meter).call()[:2] == (chain.owner, CAPACITY)


@pytest.mark.parametrize(
    ("field", "error"),
    [("meter", "InvalidMeterAddress"), ("owner", "InvalidOwnerAddress"), ("capacity", "ZeroCapacity")],
)
def test_register_rejects_zero_meter_owner_or_capacity(chain: Chain, field: str, error: str) -> None:
    args = {"meter": chain.meter, "owner": chain.owner, "capacity": 1000}
    args[field] = 0 if field == "capacity" else ZERO
    expected = error_data(chain.market, error, args["meter"] if field != "owner" else ZERO)
    chain.reverts(
        chain.market.functions.registerMeter(args["meter"], args["owner"], args["capacity"]), chain.registrar, expected
    )


def test_only_registrar_registers_or_deactivates(chain: Chain) -> None:
    role = chain.market.functions.REGISTRAR_ROLE().call()
    denied = error_data(chain.market, "AccessControlUnauthorizedAccount", chain.outsider, role)
    chain.reverts(chain.market.functions.registerMeter(chain.meter, chain.owner, 1000), chain.outsider, denied)
    chain.register()
    chain.reverts(chain.market.functions.deactivateMeter(chain.meter), chain.outsider, denied)
    assert chain.market.functions.getMeter(chain.meter).call()[2] is True


def test_registrar_role_can_be_delegated(chain: Chain) -> None:
    role = chain.market.functions.REGISTRAR_ROLE().call()
    chain.send(chain.market.functions.grantRole(role, chain.outsider), chain.admin)
    chain.send(chain.market.functions.registerMeter(chain.meter, chain.owner, 1000), chain.outsider)
    assert chain.market.functions.getMeter(chain.meter).call()[2] is True


def test_deactivated_meter_cannot_report(chain: Chain) -> None:
    registered_at = chain.register()
    receipt = chain.send(chain.market.functions.deactivateMeter(chain.meter), chain.registrar)
    assert chain.events(receipt, chain.market, "MeterDeactivated") == [{"meter": chain.meter}]
    chain.at(registered_at + 3600)
    chain.reverts(
        chain.market.functions.reportProduction(KWH),
        chain.meter,
        error_data(chain.market, "MeterNotActive", chain.meter),
    )
    assert chain.market.functions.getMeter(chain.meter).call()[5] == 0


def test_deactivating_unknown_or_inactive_meter_reverts(chain: Chain) -> None:
    chain.reverts(
        chain.market.functions.deactivateMeter(chain.meter),
        chain.registrar,
        error_data(chain.market, "MeterNotRegistered", chain.meter),
    )
    chain.register()
    chain.send(chain.market.functions.deactivateMeter(chain.meter), chain.registrar)
    chain.reverts(
        chain.market.functions.deactivateMeter(chain.meter),
        chain.registrar,
        error_data(chain.market, "MeterNotActive", chain.meter),
    )


def test_deactivated_meter_cannot_be_registered_again(chain: Chain) -> None:
    chain.register()
    chain.send(chain.market.functions.deactivateMeter(chain.meter), chain.registrar)
    chain.reverts(
        chain.market.functions.registerMeter(chain.meter, chain.owner, CAPACITY),
        chain.registrar,
        error_data(chain.market, "MeterAlreadyRegistered", chain.meter),
    )


def test_unregistered_account_cannot_report(chain: Chain) -> None:
    chain.register()
    # The owner is not the meter: only the meter's own account reports for it.
    for account in (chain.outsider, chain.owner):
        chain.reverts(
            chain.market.functions.reportProduction(KWH),
            account,
            error_data(chain.market, "MeterNotRegistered", account),
        )


def test_registrar_moves_a_meter_to_a_new_owner(chain: Chain) -> None:
    registered_at = chain.register()
    receipt = chain.send(chain.market.functions.transferMeter(chain.meter, chain.buyer), chain.registrar)
    assert chain.events(receipt, chain.market, "MeterOwnerChanged") == [
        {"meter": chain.meter, "previousOwner": chain.owner, "newOwner": chain.buyer}
    ]
    assert chain.market.functions.getMeter(chain.meter).call()[:3] == (chain.buyer, CAPACITY, True)
    chain.report(KWH, at=registered_at + 3600)
    assert chain.token.functions.balanceOf(chain.buyer).call() > 0
    assert chain.token.functions.balanceOf(chain.owner).call() == 0


def test_only_the_registrar_moves_a_meter(chain: Chain) -> None:
    chain.register()
    role = chain.market.functions.REGISTRAR_ROLE().call()
    # Neither the owner, nor the meter itself, nor the admin (it holds no REGISTRAR_ROLE until it grants itself one).
    for account in (chain.owner, chain.meter, chain.outsider, chain.admin):
        chain.reverts(
            chain.market.functions.transferMeter(chain.meter, account),
            account,
            error_data(chain.market, "AccessControlUnauthorizedAccount", account, role),
        )
    assert chain.market.functions.getMeter(chain.meter).call()[0] == chain.owner


def test_moving_an_unknown_inactive_or_to_zero_owner_meter_reverts(chain: Chain) -> None:
    move = chain.market.functions.transferMeter
    chain.reverts(
        move(chain.meter, chain.buyer), chain.registrar, error_data(chain.market, "MeterNotRegistered", chain.meter)
    )
    chain.register()
    chain.reverts(move(chain.meter, ZERO), chain.registrar, error_data(chain.market, "InvalidOwnerAddress", ZERO))
    chain.send(chain.market.functions.deactivateMeter(chain.meter), chain.registrar)
    chain.reverts(
        move(chain.meter, chain.buyer), chain.registrar, error_data(chain.market, "MeterNotActive", chain.meter)
    )


def test_imported_meter_is_credited_only_above_its_previous_total(chain: Chain) -> None:
    receipt = chain.send(
        chain.market.functions.importMeter(chain.meter, chain.owner, CAPACITY, 47_500 * KWH + 300), chain.registrar
    )
    imported_at = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert chain.market.functions.getMeter(chain.meter).call()[4:] == (0, 47_500 * KWH + 300, 47_500)
    receipt = chain.report(47_501 * KWH, at=imported_at + 3600)
    assert chain.events(receipt, chain.market, "ProductionReported")[0]["creditedKWh"] == 1
