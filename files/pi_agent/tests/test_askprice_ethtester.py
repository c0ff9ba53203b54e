"""The owner's ask price against the real compiled contracts on an in-process EVM (eth-tester).

The Pi (METER_KEY) is its own owner, as in the lab, unless a test registers it for a separate owner. What the agent
broadcasts waits in the node's pool until the test seals a block, as on Clique.
"""

from __future__ import annotations

import logging

import pytest
from eth_account import Account
from heliogrid_testing.chainkit import DEPLOYER_KEY, METER_KEY, TARIFF, artifacts_available, call, setup_market
from heliogrid_testing.sealing import hold_until_sealed

from heliogrid_agent.askprice import READ_SECONDS, AskPrice
from heliogrid_agent.chain import Web3Chain, load_deployment
from heliogrid_agent.reporter import Reporter
from heliogrid_agent.store import Store

pytestmark = [
    pytest.mark.chain,
    pytest.mark.skipif(not artifacts_available(), reason="contracts/build/*.json not compiled yet"),
]

OWNER_KEY = "0x" + "e7" * 32  # a throwaway test key: a home whose owner account is not the meter's
TOKEN = TARIFF  # one token, in base units
KWH = 10**9  # micro-Wh
CAPACITY = 4_000_000_000  # W: a report of any test size fits the capacity rule after one second


class Market:
    def __init__(self, w3, tmp_path, owner: str):
        self.w3 = w3
        self.meter = Account.from_key(METER_KEY).address
        self.owner = owner
        self.kit = setup_market(w3, tmp_path, self.meter, owner, capacity_watts=CAPACITY)
        self.market = self.kit["market"]
        self.pool: list[bytes] = []

    def ask_price(self) -> int:
        return self.market.functions.askPrice(self.owner).call()

    def asks(self) -> list[int]:
        """Every price the owner ever set, in order (AskPriceChanged)."""
        return [e["args"]["pricePerKWh"] for e in self.market.events.AskPriceChanged().get_logs(from_block=0)]

    def offers(self) -> list[tuple[str, int, int]]:
        """(seller, kWh, price per kWh) of every offer the market opened."""
        events = self.market.events.OfferCreated().get_logs(from_block=0)
        return [(e["args"]["seller"], e["args"]["kWh"], e["args"]["pricePerKWh"]) for e in events]

    def later(self, seconds: int = 5) -> None:
        tester = self.w3.provider.ethereum_tester
        tester.time_travel(self.w3.eth.get_block("latest")["timestamp"] + seconds)
        tester.mine_blocks(1)


def funded_w3():
    from web3 import EthereumTesterProvider, Web3

    w3 = Web3(EthereumTesterProvider())
    funder = w3.eth.accounts[0]
    for key in (DEPLOYER_KEY, METER_KEY, OWNER_KEY):
        w3.eth.send_transaction({"from": funder, "to": Account.from_key(key).address, "value": 10**21})
    return w3


@pytest.fixture
def w3():
    return funded_w3()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """Deployed once per module (a second of py-evm a time): every test gets it through `market`, which reverts
    whatever the test did."""
    return Market(funded_w3(), tmp_path_factory.mktemp("market"), Account.from_key(METER_KEY).address)


@pytest.fixture
def market(deployed):
    tester = deployed.w3.provider.ethereum_tester
    snapshot = tester.take_snapshot()
    yield deployed
    tester.revert_to_snapshot(snapshot)
    deployed.pool.clear()


def make_agent(market, tmp_path, clock, price: int, store=None, **kwargs):
    chain = Web3Chain("http://unused", load_deployment(market.kit["record"]), w3=market.w3)
    hold_until_sealed(chain, market.pool)
    store = store or Store(tmp_path / "agent.db")
    reporter = Reporter(
        chain, store, Account.from_key(METER_KEY), expected_chain_id=market.w3.eth.chain_id, clock=clock, **kwargs
    )
    return reporter, AskPrice(reporter, configured=price)


def run(reporter, clock, steps: int = 6) -> None:
    """Agent steps with a block sealed after each, a second apart."""
    for _ in range(steps):
        reporter.step()
        reporter.chain.seal()
        clock.advance(1)


def produce(market, reporter, kwh: int) -> None:
    """The meter counts ``kwh`` more whole kWh (committed to the store), some block time later."""
    reporter.store.raise_total(reporter.store.total_uwh() + kwh * KWH)
    market.later()


def test_the_agent_sets_the_ask_price_once_and_the_next_report_offers_its_kwh_at_that_price(market, tmp_path, clock):
    reporter, ask = make_agent(market, tmp_path, clock, 3 * TOKEN // 2)
    produce(market, reporter, 2)  # already due at the first step: the price goes first, in the same block
    run(reporter, clock)
    assert market.ask_price() == 3 * TOKEN // 2
    assert market.offers() == [(market.owner, 2, 3 * TOKEN // 2)]
    produce(market, reporter, 3)
    run(reporter, clock)
    assert market.offers()[-1] == (market.owner, 3, 3 * TOKEN // 2)
    assert market.asks() == [3 * TOKEN // 2]  # set once, not at every step
    assert ask.status() == {
        "applies": True,
        "on_chain": str(3 * TOKEN // 2),
        "wanted": str(3 * TOKEN // 2),
        "source": "config",
        "in_flight": False,
        "note": None,
    }


def test_a_restarted_agent_with_the_same_price_sends_nothing(market, tmp_path, clock):
    reporter, _ask = make_agent(market, tmp_path, clock, TOKEN)
    run(reporter, clock)
    again, _ = make_agent(market, tmp_path, clock, TOKEN, store=reporter.store)
    nonce = market.w3.eth.get_transaction_count(market.meter)
    run(again, clock)
    assert market.w3.eth.get_transaction_count(market.meter) == nonce
    assert market.asks() == [TOKEN]


def test_a_changed_price_is_sent_once_whether_from_the_configuration_or_the_page(market, tmp_path, clock):
    reporter, _ask = make_agent(market, tmp_path, clock, TOKEN)
    run(reporter, clock)
    again, ask = make_agent(market, tmp_path, clock, 2 * TOKEN, store=reporter.store)  # the configuration changed
    run(again, clock)
    assert market.asks() == [TOKEN, 2 * TOKEN]
    ask.set_price(TOKEN // 2)  # the page
    run(again, clock)
    assert market.asks() == [TOKEN, 2 * TOKEN, TOKEN // 2]
    # the page's choice is kept in the store and outlives a restart with another configured price
    third, ask3 = make_agent(market, tmp_path, clock, 7 * TOKEN, store=reporter.store)
    run(third, clock)
    assert market.asks() == [TOKEN, 2 * TOKEN, TOKEN // 2]
    assert ask3.status()["source"] == "page"


def test_a_price_changed_while_one_is_in_flight_follows_it_once_it_is_mined(market, tmp_path, clock):
    reporter, ask = make_agent(market, tmp_path, clock, TOKEN)
    reporter.step()  # signed and broadcast, not yet sealed
    ask.set_price(2 * TOKEN)
    reporter.step()  # one in flight: nothing more is signed
    assert [row.kind for row in reporter.store.unresolved()] == ["ask"]
    reporter.chain.seal()
    run(reporter, clock)
    assert market.asks() == [TOKEN, 2 * TOKEN]
    assert market.ask_price() == 2 * TOKEN


def test_a_price_of_zero_stops_offering(market, tmp_path, clock):
    reporter, ask = make_agent(market, tmp_path, clock, TOKEN)
    produce(market, reporter, 1)
    run(reporter, clock)
    assert len(market.offers()) == 1
    ask.set_price(0)
    run(reporter, clock)
    assert market.ask_price() == 0
    produce(market, reporter, 2)
    run(reporter, clock)
    assert reporter.chain.get_meter(market.meter).credited_kwh == 3  # reported and minted at the tariff...
    assert len(market.offers()) == 1  # ...but not offered


def test_with_a_separate_owner_account_the_agent_sends_nothing(w3, tmp_path, clock):
    market = Market(w3, tmp_path, Account.from_key(OWNER_KEY).address)
    reporter, ask = make_agent(market, tmp_path, clock, TOKEN)
    run(reporter, clock)
    assert w3.eth.get_transaction_count(market.meter) == 0
    assert market.asks() == []
    status = ask.status()
    assert status["applies"] is False
    assert "their own wallet" in status["note"]
    with pytest.raises(ValueError, match="their own wallet"):
        ask.set_price(2 * TOKEN)
    # what the owner set from their wallet is what the page shows
    call(w3, OWNER_KEY, market.market.functions.setAskPrice(3 * TOKEN))
    clock.advance(READ_SECONDS)  # the agent reads it again on the slow cadence
    run(reporter, clock, steps=1)
    assert ask.status()["on_chain"] == str(3 * TOKEN)
    assert w3.eth.get_transaction_count(market.meter) == 0


def test_a_price_changed_from_another_wallet_is_not_fought_over(market, tmp_path, clock, caplog):
    """The same key in another wallet set another price: the agent says so once and does not resend its own."""
    reporter, _ask = make_agent(market, tmp_path, clock, TOKEN)
    run(reporter, clock)
    call(market.w3, METER_KEY, market.market.functions.setAskPrice(5 * TOKEN))
    clock.advance(READ_SECONDS)
    with caplog.at_level(logging.WARNING, logger="heliogrid_agent.askprice"):
        run(reporter, clock, steps=40)
    assert market.asks() == [TOKEN, 5 * TOKEN]
    assert caplog.text.count("not sending it again") == 1


class Crash(Exception):
    pass


@pytest.mark.parametrize("point", ["signed", "persisted", "broadcast", "marked_sent", "settled"])
def test_a_crash_at_any_step_of_setting_the_price_sends_it_once(market, tmp_path, clock, point):
    """The agent dies (as at a SIGKILL: nothing after the crash point runs) while setting the price; a new agent on
    the same database finishes the job without a second setAskPrice."""

    def checkpoint(step):
        if step == point:
            raise Crash(step)

    reporter, _ = make_agent(market, tmp_path, clock, TOKEN, checkpoint=checkpoint)
    with pytest.raises(Crash):
        run(reporter, clock)
    reporter.store.close()
    again, ask = make_agent(market, tmp_path, clock, TOKEN, store=Store(tmp_path / "agent.db"))
    run(again, clock)
    assert market.asks() == [TOKEN]
    assert market.ask_price() == TOKEN
    assert ask.status()["in_flight"] is False
    nonces = [row.nonce for row in again.store.transactions()]
    assert len(nonces) == len(set(nonces))
