"""Meter registry: the registrar registers and deactivates meters; only active meters report."""

from __future__ import annotations

import pytest
from conftest import CAPACITY, KWH, Chain, error_data

ZERO = "0x" + "00" * 20


def test_registrar_registers_meter_with_owner_and_capacity(chain: Chain) -> None:
    receipt = chain.send(chain.market.functions.registerMeter(chain.meter, chain.owner, 5000), chain.admin)
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
        chain.admin,
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
        chain.market.functions.registerMeter(args["meter"], args["owner"], args["capacity"]), chain.admin, expected
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
    receipt = chain.send(chain.market.functions.deactivateMeter(chain.meter), chain.admin)
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
        chain.admin,
        error_data(chain.market, "MeterNotRegistered", chain.meter),
    )
    chain.register()
    chain.send(chain.market.functions.deactivateMeter(chain.meter), chain.admin)
    chain.reverts(
        chain.market.functions.deactivateMeter(chain.meter),
        chain.admin,
        error_data(chain.market, "MeterNotActive", chain.meter),
    )


def test_deactivated_meter_cannot_be_registered_again(chain: Chain) -> None:
    chain.register()
    chain.send(chain.market.functions.deactivateMeter(chain.meter), chain.admin)
    chain.reverts(
        chain.market.functions.registerMeter(chain.meter, chain.owner, CAPACITY),
        chain.admin,
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
