"""Tariff, tolerance and pause: role-guarded administration, each change announced by an event."""

from __future__ import annotations

from heliogrid_testing.evm import KWH, TOLERANCE, Chain, error_data


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


def test_tariff_above_the_bound_reverts(chain: Chain) -> None:
    bound = chain.market.functions.MAX_TARIFF().call()
    assert bound == 10**24
    chain.reverts(
        chain.market.functions.setTariff(bound + 1),
        chain.admin,
        error_data(chain.market, "TariffTooHigh", bound + 1, bound),
    )
    chain.reverts(
        chain.market.functions.setTariff(2**256 - 1),
        chain.admin,
        error_data(chain.market, "TariffTooHigh", 2**256 - 1, bound),
    )
    chain.send(chain.market.functions.setTariff(bound), chain.admin)
    assert chain.market.functions.tariff().call() == bound


def test_report_at_the_highest_tariff_mints_without_overflow(chain: Chain) -> None:
    bound = chain.market.functions.MAX_TARIFF().call()
    chain.send(chain.market.functions.setTariff(bound), chain.admin)
    registered_at = chain.register()
    chain.report(3 * KWH, at=registered_at + 3 * 3600)
    assert chain.token.functions.balanceOf(chain.owner).call() == 3 * bound
