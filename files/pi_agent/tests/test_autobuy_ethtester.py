"""Automatic buying against the real compiled contracts on an in-process EVM (eth-tester).

The buyer is a Pi (METER_KEY, its own owner) whose own reports minted its tokens; two neighbours (SELLER_KEYS)
offer kWh at their ask prices. eth-tester mines each transaction as it arrives, so one step sends and the next
settles.
"""

from __future__ import annotations

import logging

import pytest
from eth_account import Account
from heliogrid_testing.chainkit import DEPLOYER_KEY, METER_KEY, TARIFF, artifacts_available, call, setup_market
from heliogrid_testing.sealing import hold_until_sealed

from heliogrid_agent.autobuy import AutoBuyer
from heliogrid_agent.chain import Web3Chain, load_deployment
from heliogrid_agent.metrics import AgentMetrics
from heliogrid_agent.reporter import Reporter
from heliogrid_agent.store import Store

pytestmark = [
    pytest.mark.chain,
    pytest.mark.skipif(not artifacts_available(), reason="contracts/build/*.json not compiled yet"),
]

SELLER_KEYS = ("0x" + "c3" * 32, "0x" + "e5" * 32)  # throwaway test keys: two neighbours who sell
KWH = 10**9  # micro-Wh
TOKEN = TARIFF  # one token, in base units
CAP = TOKEN  # the buyer pays at most 1 token per kWh
CAPACITY = 4_000_000_000  # W: a report of any test size fits the capacity rule after one second


class Market:
    """The deployed market, its meters' cumulative totals and the test's helpers."""

    def __init__(self, w3, tmp_path):
        self.w3 = w3
        self.buyer = Account.from_key(METER_KEY).address
        self.kit = setup_market(w3, tmp_path, self.buyer, self.buyer, capacity_watts=CAPACITY)
        self.market, self.token = self.kit["market"], self.kit["token"]
        self.totals: dict[str, int] = {}
        self.pool: list[bytes] = []  # the transactions the agent sent since the last block
        for key in SELLER_KEYS:
            address = Account.from_key(key).address
            call(w3, DEPLOYER_KEY, self.market.functions.registerMeter(address, address, CAPACITY))

    def next_block(self, seconds: int = 1) -> None:
        tester = self.w3.provider.ethereum_tester
        tester.time_travel(self.w3.eth.get_block("latest")["timestamp"] + seconds)
        tester.mine_blocks(1)

    def report(self, key: str, kwh: int, price: int = 0) -> int | None:
        """``key``'s meter reports ``kwh`` more whole kWh at ask price ``price``; returns the new offer's id."""
        address = Account.from_key(key).address
        if self.market.functions.askPrice(address).call() != price:
            call(self.w3, key, self.market.functions.setAskPrice(price))
        self.next_block(5)
        self.totals[key] = self.totals.get(key, 0) + kwh * 1000
        before = self.market.functions.nextOfferId().call()
        call(self.w3, key, self.market.functions.reportProduction(self.totals[key]))
        after = self.market.functions.nextOfferId().call()
        return before if after > before else None

    def offer(self, seller: int, kwh: int, price: int) -> int:
        offer_id = self.report(SELLER_KEYS[seller], kwh, price)
        assert offer_id is not None
        return offer_id

    def balance(self, address: str | None = None) -> int:
        return self.token.functions.balanceOf(address or self.buyer).call()

    def purchased(self) -> int:
        return self.market.functions.purchasedKWh(self.buyer).call()

    def purchases(self) -> list[tuple[int, int, int]]:
        """(offerId, kWh, cost) of every purchase on the market, in order."""
        events = self.market.events.EnergyPurchased().get_logs(from_block=0)
        return [(e["args"]["offerId"], e["args"]["kWh"], e["args"]["cost"]) for e in events]

    def remaining(self, offer_id: int) -> int:
        return self.market.functions.getOffer(offer_id).call()[2]


def funded_w3():
    from web3 import EthereumTesterProvider, Web3

    w3 = Web3(EthereumTesterProvider())
    funder = w3.eth.accounts[0]
    for key in (DEPLOYER_KEY, METER_KEY, *SELLER_KEYS):
        w3.eth.send_transaction({"from": funder, "to": Account.from_key(key).address, "value": 10**21})
    return w3


def deploy_market(workdir) -> Market:
    m = Market(funded_w3(), workdir)
    m.report(METER_KEY, 20)  # the buyer's own production: 20 tokens to spend, no offer (no ask price)
    return m


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """Deployed once per module (a second of py-evm a time): every test gets it through `market`, which reverts
    whatever the test did."""
    return deploy_market(tmp_path_factory.mktemp("market"))


@pytest.fixture
def market(deployed):
    tester = deployed.w3.provider.ethereum_tester
    snapshot, totals = tester.take_snapshot(), dict(deployed.totals)
    yield deployed
    tester.revert_to_snapshot(snapshot)
    deployed.totals.clear()
    deployed.totals.update(totals)
    deployed.pool.clear()


@pytest.fixture
def fresh_market(tmp_path):
    """A market of its own, for a test that rewrites the chain's history itself: eth-tester restarts the clock of a
    chain reverted to an old block from the wall clock, so a second revert inside a shared chain cannot mine again."""
    return deploy_market(tmp_path)


def make_buyer(market, tmp_path, clock, *, budget=100 * TOKEN, cap=CAP, available=True, store=None, **kwargs):
    chain = Web3Chain("http://unused", load_deployment(market.kit["record"]), w3=market.w3)
    hold_until_sealed(chain, market.pool)
    store = store or Store(tmp_path / "agent.db")
    account = Account.from_key(METER_KEY)
    reporter = Reporter(
        chain, store, account, expected_chain_id=market.w3.eth.chain_id, clock=clock, max_buy_price_per_kwh=cap,
        **kwargs,
    )  # fmt: skip
    buyer = AutoBuyer(reporter, available=available, daily_budget=budget)
    return reporter, buyer


def run(reporter, imported_uwh: int, steps: int = 8) -> None:
    """Agent steps with a block sealed after each."""
    for _ in range(steps):
        reporter.step(imported_uwh)
        reporter.chain.seal()


def test_imported_kwh_are_bought_from_the_cheapest_offers_first_and_each_once(market, tmp_path, clock):
    dear = market.offer(0, 3, TOKEN // 2)
    cheap = market.offer(1, 2, 3 * TOKEN // 10)
    market.offer(0, 2, 8 * TOKEN // 10)
    before = market.balance()
    metrics = AgentMetrics()
    reporter, buyer = make_buyer(market, tmp_path, clock, metrics=metrics)
    run(reporter, KWH // 5, steps=2)  # the baseline: 0 whole kWh imported so far
    assert market.purchased() == 0
    assert metrics.registry.get_sample_value("heliogrid_agent_auto_buy_uncovered_kwh") == 0
    run(reporter, 4 * KWH + KWH // 2)
    assert market.purchases() == [(cheap, 2, 2 * 3 * TOKEN // 10), (dear, 2, 2 * TOKEN // 2)]
    assert market.purchased() == 4
    spent = 2 * 3 * TOKEN // 10 + 2 * TOKEN // 2
    assert market.balance() == before - spent
    status = buyer.status()
    assert (status["bought_kwh"], status["tokens_spent"], status["uncovered_kwh"]) == (4, str(spent), 0)
    assert status["imported_kwh"] == pytest.approx(4.5)
    metric = metrics.registry.get_sample_value
    assert metric("heliogrid_agent_auto_buy_bought_kwh") == 4
    assert metric("heliogrid_agent_auto_buy_tokens_spent") == spent
    assert metric("heliogrid_agent_auto_buy_spent_today") == spent
    assert metric("heliogrid_agent_auto_buy_uncovered_kwh") == 0
    assert metric("heliogrid_agent_auto_buy_enabled") == 1
    run(reporter, 4 * KWH + KWH // 2)  # nothing new imported: nothing more bought
    assert market.purchased() == 4
    # the allowance was approved for each purchase's exact cost, and nothing of it is left over
    assert market.token.functions.allowance(market.buyer, market.market.address).call() == 0


def test_the_pages_offer_list_is_the_books_cheapest_open_offers_read_again_on_chain(market, tmp_path, clock):
    dear = market.offer(0, 3, TOKEN // 2)
    cheap = market.offer(1, 2, 3 * TOKEN // 10)
    middle = market.offer(0, 2, 4 * TOKEN // 10)
    reporter, buyer = make_buyer(market, tmp_path, clock, available=False)
    assert [o.offer_id for o in reporter.open_offers(max_age=0)] == [cheap, middle, dear]
    assert [o.offer_id for o in reporter.open_offers(limit=2, max_age=0)] == [cheap, middle]
    # cancelled on chain after the book read it: the next list leaves it out, and the book forgets it
    seller = SELLER_KEYS[1]
    call(market.w3, seller, market.market.functions.cancelOffer(cheap))
    assert [o.offer_id for o in reporter.open_offers(max_age=0)] == [middle, dear]
    assert cheap not in buyer.book.offers
    assert [o.remaining_kwh for o in reporter.open_offers(max_age=0)] == [2, 3]


def test_an_import_that_grows_while_a_purchase_is_approved_still_gets_bought(market, tmp_path, clock):
    """The import passes another kWh at every step: the approved amount is bought, not approved again and again."""
    market.offer(0, 30, TOKEN // 10)
    reporter, _buyer = make_buyer(market, tmp_path, clock)
    run(reporter, 0, steps=1)
    for kwh in range(1, 13):
        run(reporter, kwh * KWH, steps=1)
    rows = reporter.store.auto_rows()
    approves, buys = (sum(r.kind == kind for r in rows) for kind in ("approve", "buy"))
    assert market.purchased() >= 6
    assert approves <= buys + 1
    run(reporter, 12 * KWH)
    assert market.purchased() == 12


def test_the_baseline_is_the_first_import_seen_and_older_kwh_are_not_bought(market, tmp_path, clock):
    market.offer(0, 10, TOKEN // 10)
    reporter, buyer = make_buyer(market, tmp_path, clock)
    run(reporter, 1234 * KWH + 5, steps=3)
    assert market.purchased() == 0
    assert buyer.status()["baseline_kwh"] == 1234
    run(reporter, 1236 * KWH)
    assert market.purchased() == 2


def test_no_offer_above_the_owners_price_cap_is_bought(market, tmp_path, clock):
    above = market.offer(0, 5, CAP + 1)
    within = market.offer(1, 1, CAP)
    reporter, buyer = make_buyer(market, tmp_path, clock)
    run(reporter, 0, steps=1)
    run(reporter, 3 * KWH)
    assert market.purchases() == [(within, 1, CAP)]
    assert market.remaining(above) == 5
    assert buyer.status()["uncovered_kwh"] == 2
    assert "buy.max_price_per_kwh" in buyer.waiting


def test_purchases_stop_at_the_daily_budget_and_resume_after_local_midnight(market, tmp_path, clock):
    market.offer(0, 10, 3 * TOKEN // 10)
    reporter, buyer = make_buyer(market, tmp_path, clock, budget=TOKEN)  # 1 token a day: 3 kWh at 0.3
    run(reporter, 0, steps=1)
    run(reporter, 5 * KWH)
    assert market.purchased() == 3
    status = buyer.status()
    assert status["spent_today"] == str(9 * TOKEN // 10)
    assert status["uncovered_kwh"] == 2
    assert "budget" in buyer.waiting
    clock.advance(24 * 3600)  # the next local day
    run(reporter, 5 * KWH)
    assert market.purchased() == 5
    assert buyer.status()["spent_today"] == str(6 * TOKEN // 10)


def test_its_own_offer_is_never_bought_even_when_it_is_the_cheapest(market, tmp_path, clock):
    own = market.report(METER_KEY, 3, price=TOKEN // 100)  # the buyer's own meter offers 3 kWh at 0.01
    assert own is not None
    other = market.offer(0, 3, TOKEN // 2)
    reporter, _buyer = make_buyer(market, tmp_path, clock)
    run(reporter, 0, steps=1)
    run(reporter, 2 * KWH)
    assert market.purchases() == [(other, 2, 2 * TOKEN // 2)]
    assert market.remaining(own) == 3


def test_an_offer_cancelled_after_the_book_read_it_is_skipped(market, tmp_path, clock, caplog):
    gone = market.offer(0, 5, TOKEN // 10)
    emptied = market.offer(1, 1, TOKEN // 5)
    live = market.offer(1, 5, TOKEN // 2)
    reporter, buyer = make_buyer(market, tmp_path, clock)
    buyer.book.scan()
    call(market.w3, SELLER_KEYS[0], market.market.functions.cancelOffer(gone))
    call(market.w3, SELLER_KEYS[0], market.token.functions.approve(market.market.address, TOKEN))
    call(market.w3, SELLER_KEYS[0], market.market.functions.buy(emptied, 1))  # a neighbour buys it first
    buyer.book.scan = lambda: 0  # the book has not seen either yet: only getOffer tells
    with caplog.at_level(logging.INFO, logger="heliogrid_agent.autobuy"):
        run(reporter, 0, steps=1)
        run(reporter, 2 * KWH)
    assert market.purchases()[-1] == (live, 2, 2 * TOKEN // 2)
    assert market.purchased() == 2
    assert f"offer {gone} is gone" in caplog.text
    assert f"offer {emptied} is gone" in caplog.text


def test_auto_buy_switched_off_buys_nothing_and_on_again_buys_what_waited(market, tmp_path, clock):
    market.offer(0, 10, TOKEN // 10)
    reporter, buyer = make_buyer(market, tmp_path, clock)
    run(reporter, 0, steps=1)
    buyer.set_enabled(False)
    nonce = market.w3.eth.get_transaction_count(market.buyer)
    run(reporter, 3 * KWH)
    assert market.purchased() == 0
    assert market.w3.eth.get_transaction_count(market.buyer) == nonce  # not even an approval
    assert buyer.status()["uncovered_kwh"] == 3
    # the switch is in the store: a restarted agent keeps it off
    reporter2, buyer2 = make_buyer(market, tmp_path, clock, store=reporter.store)
    run(reporter2, 3 * KWH)
    assert market.purchased() == 0
    buyer2.set_enabled(True)
    run(reporter2, 3 * KWH)
    assert market.purchased() == 3


def test_auto_buy_off_in_the_configuration_cannot_be_switched_on(market, tmp_path, clock):
    market.offer(0, 10, TOKEN // 10)
    reporter, buyer = make_buyer(market, tmp_path, clock, available=False)
    run(reporter, 0, steps=1)
    with pytest.raises(ValueError, match=r"buy\.auto = false"):
        buyer.set_enabled(True)
    run(reporter, 3 * KWH)
    assert market.purchased() == 0
    assert buyer.status()["enabled"] is False


class Crash(Exception):
    pass


@pytest.mark.parametrize("point", ["signed", "persisted", "broadcast", "marked_sent", "settled"])
@pytest.mark.parametrize("nth", [1, 2, 3, 4])
def test_a_crash_at_any_step_of_a_purchase_buys_and_pays_each_kwh_once(market, tmp_path, clock, point, nth):
    """The agent dies at the nth time it reaches ``point`` (approve and buy both pass there); a new agent on the
    same database finishes the job: purchasedKWh and the tokens paid equal the imported kWh, once."""
    offers = [market.offer(0, 2, 3 * TOKEN // 10), market.offer(1, 3, TOKEN // 2)]
    before = market.balance()
    seen = {"n": 0}

    def checkpoint(step):
        if step == point:
            seen["n"] += 1
            if seen["n"] == nth:
                raise Crash(step)

    reporter, _ = make_buyer(market, tmp_path, clock, checkpoint=checkpoint)
    run(reporter, 0, steps=1)
    with pytest.raises(Crash):
        run(reporter, 4 * KWH, steps=30)
    reporter.store.close()
    again, buyer = make_buyer(market, tmp_path, clock, store=Store(tmp_path / "agent.db"))
    run(again, 4 * KWH, steps=20)
    assert market.purchased() == 4
    assert sum(kwh for _, kwh, _ in market.purchases()) == 4
    paid = 2 * 3 * TOKEN // 10 + 2 * TOKEN // 2
    assert market.balance() == before - paid
    assert [o for o, _, _ in market.purchases()] == [offers[0], offers[1]]
    assert buyer.status()["tokens_spent"] == str(paid)
    nonces = sorted(r.nonce for r in again.store.transactions())
    assert len(nonces) == len(set(nonces))


def test_the_offer_book_rebuilds_itself_after_a_reorganised_chain(fresh_market, tmp_path, clock):
    market = fresh_market
    tester = market.w3.provider.ethereum_tester
    _reporter, buyer = make_buyer(market, tmp_path, clock)
    snapshot = tester.take_snapshot()
    first = market.offer(0, 4, TOKEN // 10)
    buyer.book.scan()
    assert [(o.offer_id, o.price_per_kwh) for o in buyer.book.cheapest()] == [(first, TOKEN // 10)]
    tester.revert_to_snapshot(snapshot)  # the blocks holding that offer are gone; another chain grows instead
    market.totals.clear()
    for _ in range(10):
        market.next_block(2)
    buyer.book.scan()
    assert buyer.book.cheapest() == []
    replaced = market.offer(1, 2, TOKEN // 4)
    assert replaced == first  # the same id, another offer
    buyer.book.scan()
    assert [(o.offer_id, o.seller, o.price_per_kwh) for o in buyer.book.cheapest()] == [
        (first, Account.from_key(SELLER_KEYS[1]).address, TOKEN // 4)
    ]


def test_the_offer_book_survives_a_restart_without_reading_old_blocks_again(market, tmp_path, clock):
    first = market.offer(0, 4, TOKEN // 10)
    reporter, buyer = make_buyer(market, tmp_path, clock)
    buyer.book.scan()
    second = market.offer(1, 2, TOKEN // 4)
    _reporter2, buyer2 = make_buyer(market, tmp_path, clock, store=reporter.store)
    reads = []
    real = buyer2.chain.offer_events
    buyer2.chain.offer_events = lambda a, b: reads.append((a, b)) or real(a, b)
    buyer2.book.scan()
    assert reads
    assert reads[0][0] == buyer.book.block + 1
    assert [o.offer_id for o in buyer2.book.cheapest()] == [first, second]


def test_a_buyer_that_found_nothing_to_buy_looks_again_only_at_a_new_block(market, tmp_path, clock):
    market.offer(0, 5, CAP + 1)  # above the cap: nothing to buy
    reporter, buyer = make_buyer(market, tmp_path, clock)
    run(reporter, 0, steps=1)
    run(reporter, 2 * KWH, steps=1)
    reporter.step(2 * KWH)  # the block sealed after the last step: looked at once
    assert buyer.waiting.startswith("no open offer")
    chain, heads = reporter.chain, []
    head = chain.head
    chain.head = lambda: (heads.append(1), head())[1]
    for _ in range(3):
        reporter.step(2 * KWH)  # the same block: the book and the offers it read have not changed
    assert heads == []
    within = market.offer(1, 2, CAP)  # a new offer, in a new block
    run(reporter, 2 * KWH)
    assert heads != []
    assert market.purchases() == [(within, 2, 2 * CAP)]
