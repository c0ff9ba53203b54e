"""Cumulative, monotonic production reports: only the increase is credited, within what capacity allows."""

from __future__ import annotations

from heliogrid_testing.evm import CAPACITY, KWH, REPORT_WINDOW, TARIFF, TOLERANCE, Chain, error_data


def max_increase_wh(capacity: int, elapsed: int, tolerance: int = TOLERANCE) -> int:
    return capacity * elapsed * (100 + tolerance) // 360_000


def test_report_credits_whole_kwh_and_mints_tariff_to_owner(chain: Chain) -> None:
    registered_at = chain.register()
    receipt = chain.report(2 * KWH + 400, at=registered_at + 3000)
    assert chain.events(receipt, chain.market, "ProductionReported") == [
        {"meter": chain.meter, "owner": chain.owner, "totalWh": 2400, "creditedKWh": 2, "tokensMinted": 2 * TARIFF}
    ]
    assert chain.token.functions.balanceOf(chain.owner).call() == 2 * TARIFF
    assert chain.token.functions.balanceOf(chain.meter).call() == 0
    assert chain.market.functions.getMeter(chain.meter).call()[4:] == (registered_at + 3000, 2400, 2)


def test_report_credits_only_the_increase(chain: Chain) -> None:
    registered_at = chain.register()
    chain.report(1500, at=registered_at + 2000)
    receipt = chain.report(2600, at=registered_at + 4000)
    # 1500 Wh -> 1 kWh credited; 2600 Wh -> 2 kWh in total, so this report credits 1 more.
    assert chain.events(receipt, chain.market, "ProductionReported")[0]["creditedKWh"] == 1
    assert chain.token.functions.balanceOf(chain.owner).call() == 2 * TARIFF
    assert chain.market.functions.getMeter(chain.meter).call()[5:] == (2600, 2)


def test_report_below_one_kwh_mints_nothing_but_counts(chain: Chain) -> None:
    registered_at = chain.register()
    chain.send(chain.market.functions.setAskPrice(10), chain.owner)
    receipt = chain.report(999, at=registered_at + 1000)
    assert chain.events(receipt, chain.market, "ProductionReported")[0]["tokensMinted"] == 0
    assert chain.events(receipt, chain.market, "OfferCreated") == []
    assert chain.token.functions.totalSupply().call() == 0
    # The Wh below a whole kWh are kept: one more Wh completes the first kWh.
    receipt = chain.report(1000, at=registered_at + 1100)
    assert chain.events(receipt, chain.market, "ProductionReported")[0]["creditedKWh"] == 1


def test_replayed_report_reverts_and_credits_nothing(chain: Chain) -> None:
    registered_at = chain.register()
    chain.report(1200, at=registered_at + 3600)
    supply = chain.token.functions.totalSupply().call()
    chain.at(registered_at + 7200)
    chain.reverts(
        chain.market.functions.reportProduction(1200), chain.meter, error_data(chain.market, "NoIncrease", 1200)
    )
    assert chain.token.functions.totalSupply().call() == supply
    assert chain.market.functions.getMeter(chain.meter).call()[4:] == (registered_at + 3600, 1200, 1)


def test_decreasing_total_reverts_with_previous_and_reported(chain: Chain) -> None:
    registered_at = chain.register()
    chain.report(1200, at=registered_at + 3600)
    chain.at(registered_at + 7200)
    chain.reverts(
        chain.market.functions.reportProduction(1199),
        chain.meter,
        error_data(chain.market, "TotalDecreased", 1200, 1199),
    )
    assert chain.market.functions.getMeter(chain.meter).call()[5] == 1200


def test_increase_beyond_capacity_times_elapsed_reverts(chain: Chain) -> None:
    registered_at = chain.register()
    chain.at(registered_at + 1000)
    allowed = max_increase_wh(CAPACITY, 1000)  # 3600 W for 1000 s = 1000 Wh, +10 % = 1100 Wh
    assert allowed == 1100
    chain.reverts(
        chain.market.functions.reportProduction(5000),
        chain.meter,
        error_data(chain.market, "ExceedsCapacity", 5000, allowed),
    )
    assert chain.token.functions.totalSupply().call() == 0


def test_tolerance_bounds_the_increase_exactly(chain: Chain) -> None:
    registered_at = chain.register()
    allowed = max_increase_wh(CAPACITY, 1000)
    chain.at(registered_at + 1000)
    chain.reverts(
        chain.market.functions.reportProduction(allowed + 1),
        chain.meter,
        error_data(chain.market, "ExceedsCapacity", allowed + 1, allowed),
    )
    chain.report(allowed, at=registered_at + 1000)
    assert chain.market.functions.getMeter(chain.meter).call()[5] == allowed


def test_elapsed_time_counts_from_the_last_report(chain: Chain) -> None:
    registered_at = chain.register()
    chain.report(1000, at=registered_at + 3600)
    # 100 s after the last report (3700 s after registration) only 110 Wh more fit.
    chain.at(registered_at + 3700)
    chain.reverts(
        chain.market.functions.reportProduction(1000 + 111),
        chain.meter,
        error_data(chain.market, "ExceedsCapacity", 111, 110),
    )
    chain.report(1000 + 110, at=registered_at + 3700)


def test_tolerance_change_applies_to_next_report(chain: Chain) -> None:
    registered_at = chain.register()
    chain.send(chain.market.functions.setTolerancePercent(0), chain.admin)
    chain.at(registered_at + 1000)
    chain.reverts(
        chain.market.functions.reportProduction(1001),
        chain.meter,
        error_data(chain.market, "ExceedsCapacity", 1001, 1000),
    )
    chain.report(1000, at=registered_at + 1000)


def test_report_opens_offer_at_owner_ask_price(chain: Chain) -> None:
    registered_at = chain.register()
    receipt = chain.send(chain.market.functions.setAskPrice(3 * 10**17), chain.owner)
    assert chain.events(receipt, chain.market, "AskPriceChanged") == [{"owner": chain.owner, "pricePerKWh": 3 * 10**17}]
    assert chain.market.functions.askPrice(chain.owner).call() == 3 * 10**17
    first_id = chain.market.functions.nextOfferId().call()
    assert first_id == 1
    receipt = chain.report(3 * KWH, at=registered_at + 3600)
    assert chain.events(receipt, chain.market, "OfferCreated") == [
        {"offerId": 1, "seller": chain.owner, "meter": chain.meter, "kWh": 3, "pricePerKWh": 3 * 10**17}
    ]
    assert chain.market.functions.getOffer(1).call() == (chain.owner, chain.meter, 3, 3 * 10**17, True)
    assert chain.market.functions.nextOfferId().call() == 2
    # Tokens are minted at the tariff as well: the owner is paid for the energy and may also sell it.
    assert chain.token.functions.balanceOf(chain.owner).call() == 3 * TARIFF


def test_without_ask_price_credited_kwh_are_only_minted(chain: Chain) -> None:
    registered_at = chain.register()
    receipt = chain.report(2 * KWH, at=registered_at + 3600)
    assert chain.events(receipt, chain.market, "OfferCreated") == []
    assert chain.market.functions.nextOfferId().call() == 1
    assert chain.token.functions.balanceOf(chain.owner).call() == 2 * TARIFF


def test_zero_tariff_offers_without_minting(chain: Chain) -> None:
    registered_at = chain.register()
    chain.send(chain.market.functions.setTariff(0), chain.admin)
    chain.send(chain.market.functions.setAskPrice(5), chain.owner)
    receipt = chain.report(KWH, at=registered_at + 3600)
    assert chain.events(receipt, chain.market, "ProductionReported")[0]["tokensMinted"] == 0
    assert chain.token.functions.totalSupply().call() == 0
    assert chain.market.functions.getOffer(1).call()[2:] == (1, 5, True)


def test_meter_silent_for_90_days_mints_at_most_one_window(chain: Chain) -> None:
    registered_at = chain.register()
    chain.report(KWH, at=registered_at + 3600)
    window = chain.market.functions.maxReportSeconds().call()
    assert window == REPORT_WINDOW
    allowed = max_increase_wh(CAPACITY, REPORT_WINDOW)  # 24 h at capacity, +10 %
    months = KWH + max_increase_wh(CAPACITY, 90 * 86400)
    chain.at(registered_at + 3600 + 90 * 86400)
    chain.reverts(
        chain.market.functions.reportProduction(months),
        chain.meter,
        error_data(chain.market, "ExceedsCapacity", months - KWH, allowed),
    )
    receipt = chain.report(KWH + allowed, at=registered_at + 3600 + 90 * 86400 + 1)
    credited = chain.events(receipt, chain.market, "ProductionReported")[0]["creditedKWh"]
    assert credited == (KWH + allowed) // KWH - 1
    assert chain.token.functions.balanceOf(chain.owner).call() == (credited + 1) * TARIFF


def test_first_report_long_after_registration_counts_one_window(chain: Chain) -> None:
    registered_at = chain.register()
    allowed = max_increase_wh(CAPACITY, REPORT_WINDOW)
    chain.at(registered_at + 30 * 86400)
    chain.reverts(
        chain.market.functions.reportProduction(allowed + 1),
        chain.meter,
        error_data(chain.market, "ExceedsCapacity", allowed + 1, allowed),
    )
