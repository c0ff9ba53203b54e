"""The market: credited kWh offered at the owner's price; any account buys with tokens, paying the seller."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from heliogrid_testing.evm import KWH, TARIFF, TOKEN, Chain, error_data

PRICE = 3 * 10**17  # token base units per kWh


@pytest.fixture(scope="module")
def offer(deployed: Chain) -> Iterator[int]:
    """Offer 1: 4 kWh at PRICE from the owner's meter; the buyer holds 10 tokens and approved the market.

    Made once for the module (every test here uses it); each test's `chain` snapshot is taken on top of it, and
    the chain goes back to before it after the module."""
    chain = deployed
    before = chain.tester.take_snapshot()
    registered_at = chain.register()
    chain.send(chain.market.functions.setAskPrice(PRICE), chain.owner)
    chain.report(4 * KWH, at=registered_at + 4000)
    minter = chain.token.functions.MINTER_ROLE().call()
    chain.send(chain.token.functions.grantRole(minter, chain.admin), chain.admin)
    chain.send(chain.token.functions.mint(chain.buyer, 10 * TOKEN), chain.admin)
    chain.send(chain.token.functions.approve(chain.market.address, 10 * TOKEN), chain.buyer)
    yield 1
    chain.tester.revert_to_snapshot(before)


def balances(chain: Chain) -> tuple[int, int]:
    balance = chain.token.functions.balanceOf
    return balance(chain.buyer).call(), balance(chain.owner).call()


def test_buy_partial_fill_pays_seller_and_records_purchase(chain: Chain, offer: int) -> None:
    buyer_before, seller_before = balances(chain)
    receipt = chain.send(chain.market.functions.buy(offer, 3), chain.buyer)
    assert chain.events(receipt, chain.market, "EnergyPurchased") == [
        {"offerId": offer, "buyer": chain.buyer, "seller": chain.owner, "kWh": 3, "cost": 3 * PRICE}
    ]
    assert balances(chain) == (buyer_before - 3 * PRICE, seller_before + 3 * PRICE)
    assert chain.market.functions.getOffer(offer).call() == (chain.owner, chain.meter, 1, PRICE, True)
    assert chain.market.functions.purchasedKWh(chain.buyer).call() == 3


def test_buying_the_rest_closes_the_offer(chain: Chain, offer: int) -> None:
    chain.send(chain.market.functions.buy(offer, 1), chain.buyer)
    chain.send(chain.market.functions.buy(offer, 3), chain.buyer)
    assert chain.market.functions.getOffer(offer).call()[2:] == (0, PRICE, False)
    assert chain.market.functions.purchasedKWh(chain.buyer).call() == 4
    chain.reverts(chain.market.functions.buy(offer, 1), chain.buyer, error_data(chain.market, "OfferNotOpen", offer))


def test_buying_more_than_offered_reverts_and_changes_nothing(chain: Chain, offer: int) -> None:
    before = balances(chain)
    chain.reverts(
        chain.market.functions.buy(offer, 5),
        chain.buyer,
        error_data(chain.market, "InsufficientOffer", offer, 5, 4),
    )
    assert balances(chain) == before
    assert chain.market.functions.getOffer(offer).call()[2] == 4
    assert chain.market.functions.purchasedKWh(chain.buyer).call() == 0


def test_buying_zero_kwh_reverts(chain: Chain, offer: int) -> None:
    chain.reverts(chain.market.functions.buy(offer, 0), chain.buyer, error_data(chain.market, "ZeroKWh"))


def test_buying_an_unknown_offer_reverts(chain: Chain, offer: int) -> None:
    chain.reverts(chain.market.functions.buy(99, 1), chain.buyer, error_data(chain.market, "OfferNotFound", 99))
    chain.reverts(chain.market.functions.buy(0, 1), chain.buyer, error_data(chain.market, "OfferNotFound", 0))


def test_buy_without_allowance_reverts_with_the_erc20_error(chain: Chain, offer: int) -> None:
    chain.send(chain.token.functions.approve(chain.market.address, PRICE), chain.buyer)
    chain.reverts(
        chain.market.functions.buy(offer, 2),
        chain.buyer,
        error_data(chain.token, "ERC20InsufficientAllowance", chain.market.address, PRICE, 2 * PRICE),
    )
    assert chain.market.functions.getOffer(offer).call()[2] == 4


def test_buy_without_enough_tokens_reverts(chain: Chain, offer: int) -> None:
    chain.send(chain.token.functions.approve(chain.market.address, 10 * TOKEN), chain.outsider)
    chain.reverts(
        chain.market.functions.buy(offer, 1),
        chain.outsider,
        error_data(chain.token, "ERC20InsufficientBalance", chain.outsider, 0, PRICE),
    )


def test_owner_buys_energy_back_from_another_seller(chain: Chain, offer: int) -> None:
    # The seller of offer 1 is `owner`; here the meter's owner of a second meter buys from it.
    second_meter, second_owner = chain.outsider, chain.admin
    chain.register(meter=second_meter, owner=second_owner)
    chain.send(chain.token.functions.approve(chain.market.address, TARIFF), second_owner)
    chain.send(chain.token.functions.mint(second_owner, TARIFF), chain.admin)
    chain.send(chain.market.functions.buy(offer, 1), second_owner)
    assert chain.market.functions.purchasedKWh(second_owner).call() == 1


def test_only_the_seller_cancels_an_offer(chain: Chain, offer: int) -> None:
    chain.reverts(
        chain.market.functions.cancelOffer(offer),
        chain.buyer,
        error_data(chain.market, "NotOfferSeller", offer, chain.buyer),
    )
    receipt = chain.send(chain.market.functions.cancelOffer(offer), chain.owner)
    assert chain.events(receipt, chain.market, "OfferCancelled") == [{"offerId": offer}]
    assert chain.market.functions.getOffer(offer).call()[2:] == (4, PRICE, False)


def test_cancelled_offer_cannot_be_bought_or_cancelled_again(chain: Chain, offer: int) -> None:
    chain.send(chain.market.functions.cancelOffer(offer), chain.owner)
    closed = error_data(chain.market, "OfferNotOpen", offer)
    chain.reverts(chain.market.functions.buy(offer, 1), chain.buyer, closed)
    chain.reverts(chain.market.functions.cancelOffer(offer), chain.owner, closed)
    chain.reverts(chain.market.functions.cancelOffer(7), chain.owner, error_data(chain.market, "OfferNotFound", 7))


def test_ask_price_change_applies_to_future_offers_only(chain: Chain, offer: int) -> None:
    chain.send(chain.market.functions.setAskPrice(2 * PRICE), chain.owner)
    assert chain.market.functions.getOffer(offer).call()[3] == PRICE
    meter = chain.market.functions.getMeter(chain.meter).call()
    chain.report(5 * KWH, at=meter[4] + 3600)
    assert chain.market.functions.getOffer(offer + 1).call() == (chain.owner, chain.meter, 1, 2 * PRICE, True)
