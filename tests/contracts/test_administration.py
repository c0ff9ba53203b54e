"""Tariff, tolerance and pause: role-guarded administration, each change announced by an event."""

from __future__ import annotations

from conftest import KWH, TOLERANCE, Chain, error_data


def test_tariff_change_emits_event_and_needs_tariff_role(chain: Chain) -> None:
    role = chain.market.functions.TARIFF_ROLE().call()
    chain.reverts(
        chain.market.functions.setTariff(7),
        chain.outsider,
        error_data(chain.market, "AccessControlUnauthorizedAccount", chain.outsider, role),
    )
    receipt = chain.send(chain.market.functions.setTariff(7), chain.admin)
    assert chain.events(receipt, chain.market, "TariffChanged") == [{"tariff": 7}]
    assert chain.market.functions.tariff().call() == 7


def test_tolerance_change_emits_event_and_needs_tariff_role(chain: Chain) -> None:
    role = chain.market.functions.TARIFF_ROLE().call()
    chain.reverts(
        chain.market.functions.setTolerancePercent(5),
        chain.outsider,
        error_data(chain.market, "AccessControlUnauthorizedAccount", chain.outsider, role),
    )
    receipt = chain.send(chain.market.functions.setTolerancePercent(5), chain.admin)
    assert chain.events(receipt, chain.market, "ToleranceChanged") == [{"tolerancePercent": 5}]
    assert chain.market.functions.tolerancePercent().call() == 5


def test_tolerance_above_maximum_reverts(chain: Chain) -> None:
    chain.reverts(
        chain.market.functions.setTolerancePercent(101),
        chain.admin,
        error_data(chain.market, "ToleranceTooHigh", 101, 100),
    )
    assert chain.market.functions.tolerancePercent().call() == TOLERANCE


def test_pause_blocks_reports_and_buys_until_unpaused(chain: Chain) -> None:
    registered_at = chain.register()
    receipt = chain.send(chain.market.functions.pause(), chain.admin)
    assert chain.events(receipt, chain.market, "Paused") == [{"account": chain.admin}]
    paused = error_data(chain.market, "EnforcedPause")
    chain.at(registered_at + 3600)
    chain.reverts(chain.market.functions.reportProduction(KWH), chain.meter, paused)
    chain.reverts(chain.market.functions.buy(1, 1), chain.buyer, paused)
    receipt = chain.send(chain.market.functions.unpause(), chain.admin)
    assert chain.events(receipt, chain.market, "Unpaused") == [{"account": chain.admin}]
    chain.report(KWH, at=registered_at + 3700)
    assert chain.market.functions.getMeter(chain.meter).call()[6] == 1


def test_only_pauser_pauses_and_unpauses(chain: Chain) -> None:
    role = chain.market.functions.PAUSER_ROLE().call()
    denied = error_data(chain.market, "AccessControlUnauthorizedAccount", chain.outsider, role)
    chain.reverts(chain.market.functions.pause(), chain.outsider, denied)
    chain.send(chain.market.functions.pause(), chain.admin)
    chain.reverts(chain.market.functions.unpause(), chain.outsider, denied)
    assert chain.market.functions.paused().call() is True


def test_admin_holds_every_role_and_nobody_else_does(chain: Chain) -> None:
    fns = chain.market.functions
    roles = [
        fns.DEFAULT_ADMIN_ROLE().call(),
        fns.REGISTRAR_ROLE().call(),
        fns.TARIFF_ROLE().call(),
        fns.PAUSER_ROLE().call(),
    ]
    assert all(fns.hasRole(role, chain.admin).call() for role in roles)
    assert not any(
        fns.hasRole(role, account).call()
        for role in roles
        for account in (chain.meter, chain.owner, chain.buyer, chain.outsider)
    )
