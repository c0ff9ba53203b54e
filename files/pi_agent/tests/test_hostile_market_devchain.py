"""The agent and its page against a real Clique geth (heliogrid_testing/devchain.py) where tokens and gas are real.

- A paused market: the agent sends no transaction at all (the meter's nonce and ether do not move) while its
  counter keeps growing; after the unpause it resumes by itself and the chain credits every kWh once.
- The page's attacks, each one played against a buyer holding real tokens, and each one leaving its tokens and
  nonce where they were: a DNS-rebinding POST, POSTs without the owner's code or its CSRF token, a purchase
  above the owner's cap, a negative Content-Length. Then the owner's confirmed purchase moves the tokens.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from heliogrid_testing.chainkit import (
    ADMIN_KEY,
    DEPLOYER_KEY,
    METER_KEY,
    TARIFF,
    artifacts_available,
    call,
    setup_market,
)
from heliogrid_testing.pageclient import Client, raw_request

from heliogrid_agent.agent import Agent
from heliogrid_agent.chain import Web3Chain, load_deployment
from heliogrid_agent.clock import SystemClock
from heliogrid_agent.config import parse_config
from heliogrid_agent.meter import UWH_PER_WH
from heliogrid_agent.reporter import Reporter, wait_until
from heliogrid_agent.sensors import SimulatedInstallation
from heliogrid_agent.store import Store
from heliogrid_agent.ui import UiServer
from heliogrid_agent.ui_auth import read_secret

pytestmark = [pytest.mark.chain, pytest.mark.slow]

BUYER_KEY = "0x" + "c3" * 32  # a throwaway test key: the Pi whose page is attacked
BUYER_METER_KEY = "0x" + "e5" * 32  # the buyer's own meter, whose reports mint the buyer's tokens
CAP = 2 * TARIFF  # the buyer's owner pays at most 2 tokens per kWh


@pytest.fixture(scope="module")
def devchain(tmp_path_factory):
    if not artifacts_available():
        pytest.fail("contracts/build/*.json are missing: the recorded contract artifacts are part of the repository")
    from heliogrid_testing import devchain as devchain_module

    prefund = [Account.from_key(k).address for k in (ADMIN_KEY, DEPLOYER_KEY, METER_KEY, BUYER_KEY, BUYER_METER_KEY)]
    try:
        chain = devchain_module.DevChain(tmp_path_factory.mktemp("devchain"), prefund=prefund)
    except devchain_module.GethNotBuilt as exc:
        pytest.fail(f"geth not built: {exc}")
    with chain:
        yield chain


@pytest.fixture
def w3(devchain):
    from web3 import Web3
    from web3.middleware import ExtraDataToPOAMiddleware

    w3 = Web3(Web3.HTTPProvider(devchain.rpc_url))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3


def simulated_config(**sections):
    """A 3.6 MW clear-sky installation: one kWh a second, so that a test sees several kWh in seconds."""
    return parse_config(
        {
            "meter": {"sensor": "simulated", "interval_seconds": 0.1},
            "sensor": {
                "simulated": {
                    "panels": 10,
                    "panel_peak_watts": 360_000,
                    "clear_sky": True,
                    "noise": 0.0,
                    "house_watts": 0,
                }
            },
            "chain": {"poll_seconds": 0.2},
            **sections,
        }
    )


def test_paused_market_gets_zero_transactions_and_every_kwh_once_after_the_unpause(tmp_path, w3, devchain):
    meter = Account.from_key(METER_KEY)
    kit = setup_market(w3, tmp_path, meter.address, meter.address, capacity_watts=4_000_000)
    market, token = kit["market"], kit["token"]
    call(w3, ADMIN_KEY, market.functions.pause())

    cfg = simulated_config()
    chain = Web3Chain(devchain.rpc_url, load_deployment(kit["record"]))
    store = Store(tmp_path / "agent.db")
    reporter = Reporter(chain, store, meter, expected_chain_id=w3.eth.chain_id, clock=SystemClock())
    agent = Agent(cfg, SimulatedInstallation(cfg.sensor, SystemClock()), store, reporter)
    nonce_before = w3.eth.get_transaction_count(meter.address, "pending")
    ether_before = w3.eth.get_balance(meter.address)
    agent.start()
    try:
        assert wait_until(lambda: reporter.status.market_paused is True, 30)
        blocks_before = w3.eth.block_number
        # Several kWh and several blocks while paused: on today's main each kWh was a reverted transaction.
        assert wait_until(
            lambda: store.total_uwh() >= 6000 * UWH_PER_WH and w3.eth.block_number >= blocks_before + 4, 60
        )
        paused_wh = store.total_uwh() // UWH_PER_WH
        assert w3.eth.get_transaction_count(meter.address, "pending") == nonce_before
        assert w3.eth.get_transaction_count(meter.address, "latest") == nonce_before
        assert w3.eth.get_balance(meter.address) == ether_before
        assert store.transactions() == []
        assert "market is paused" in agent.status()["problem"]
        assert agent.status()["market_paused"] is True

        call(w3, ADMIN_KEY, market.functions.unpause())
        # It resumes by itself: the energy counted during the pause is credited without anyone running anything.
        assert wait_until(lambda: market.functions.getMeter(meter.address).call()[6] >= paused_wh // 1000, 60)
    finally:
        agent.stop()
    # The sampler has stopped: let the reporter catch up with a counter that no longer moves.
    counter_kwh = store.total_uwh() // UWH_PER_WH // 1000

    def caught_up() -> bool:
        reporter.step()
        return market.functions.getMeter(meter.address).call()[6] == counter_kwh and not store.unresolved()

    assert wait_until(caught_up, 90, interval=0.5)
    credited = market.functions.getMeter(meter.address).call()[6]
    events = market.events.ProductionReported().get_logs(from_block=0)
    assert sum(e["args"]["creditedKWh"] for e in events) == credited == counter_kwh  # every kWh once
    assert token.functions.balanceOf(meter.address).call() == credited * TARIFF
    rows = store.transactions()
    assert [r.status for r in rows] == ["mined"] * len(rows)
    assert [r.nonce for r in rows] == list(range(nonce_before, nonce_before + len(rows)))
    assert agent.status()["market_paused"] is False


@pytest.fixture
def market_with_offers(tmp_path, w3):
    """Two offers of the meter: #a at 3 tokens per kWh (above the buyer's cap), #b at 1 token; a buyer with tokens.

    The buyer's tokens are minted by the market, as every token is: its own meter reports 10 kWh. The buyer's
    account itself sends nothing, so its nonce stays 0 until the owner's purchase.
    """
    meter, buyer, buyer_meter = (Account.from_key(k).address for k in (METER_KEY, BUYER_KEY, BUYER_METER_KEY))
    kit = setup_market(w3, tmp_path, meter, meter, capacity_watts=40_000_000, ask_price=3 * TARIFF)
    market, token = kit["market"], kit["token"]
    call(w3, DEPLOYER_KEY, market.functions.registerMeter(buyer_meter, buyer, 40_000_000))
    call(w3, METER_KEY, market.functions.reportProduction(1000))
    call(w3, METER_KEY, market.functions.setAskPrice(TARIFF))
    call(w3, METER_KEY, market.functions.reportProduction(3000))
    call(w3, BUYER_METER_KEY, market.functions.reportProduction(10_000))
    assert token.functions.balanceOf(buyer).call() == 10 * TARIFF
    last = market.functions.nextOfferId().call() - 1
    return kit, last - 1, last


@pytest.fixture
def page(tmp_path, w3, devchain, market_with_offers):
    kit, expensive, cheap = market_with_offers
    buyer = Account.from_key(BUYER_KEY)
    cfg = simulated_config()
    chain = Web3Chain(devchain.rpc_url, load_deployment(kit["record"]))
    store = Store(tmp_path / "buyer.db")
    reporter = Reporter(chain, store, buyer, expected_chain_id=w3.eth.chain_id, max_buy_price_per_kwh=CAP)
    agent = Agent(cfg, SimulatedInstallation(cfg.sensor, SystemClock()), store, reporter)
    secret = tmp_path / "ui-secret"
    server = UiServer(agent, "127.0.0.1", 0, secret_file=secret, timeout=2.0).start()
    reporter.step()
    yield server, agent, kit, expensive, cheap, read_secret(secret)
    server.stop()


def test_page_attacks_move_no_token_and_the_owners_confirmed_purchase_does(w3, page):
    server, agent, kit, expensive, cheap, code = page
    market, token = kit["market"], kit["token"]
    buyer = Account.from_key(BUYER_KEY).address
    seller = Account.from_key(METER_KEY).address

    def untouched() -> None:
        assert token.functions.balanceOf(buyer).call() == 10 * TARIFF
        assert w3.eth.get_transaction_count(buyer, "pending") == 0
        assert agent.store.transactions() == []

    assert market.functions.getOffer(expensive).call()[3] == 3 * TARIFF
    assert market.functions.getOffer(cheap).call()[3] == TARIFF

    # A POST without the owner's code.
    stranger = Client(server.port)
    assert stranger.post("/api/buy/quote", {"offer_id": cheap, "kwh": 1})[0] == 401
    assert stranger.post("/api/buy", {"offer_id": cheap, "kwh": 1})[0] == 401
    untouched()

    owner = Client(server.port)
    assert owner.login(code) == 200

    # A DNS-rebinding page: the owner's browser, the Pi's address, the attacker's name in Host.
    rebinding = Client(server.port, host=f"attacker.example:{server.port}")
    rebinding.cookie, rebinding.csrf = owner.cookie, owner.csrf
    assert rebinding.post("/api/buy/quote", {"offer_id": cheap, "kwh": 1})[0] == 403
    untouched()

    # The owner's session without its CSRF token (a form another page submits).
    forged = Client(server.port)
    forged.cookie = owner.cookie
    assert forged.post("/api/buy/quote", {"offer_id": cheap, "kwh": 1})[0] == 403
    untouched()

    # An offer above the owner's cap, through the page and around it.
    status, body = owner.post("/api/buy/quote", {"offer_id": expensive, "kwh": 1})
    assert status == 409
    assert "above the owner's cap" in body["error"]
    with pytest.raises(ValueError, match="above the owner's cap"):
        agent.reporter.buy(expensive, 1)
    untouched()

    # A negative Content-Length.
    answer = raw_request(
        server.port,
        f"POST /api/buy HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nCookie: {owner.cookie}\r\n"
        f"X-CSRF-Token: {owner.csrf}\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n".encode(),
    )
    assert answer.split(b" ")[1] == b"400"
    untouched()

    # The owner asks, reads the exact total, confirms: now the tokens move, exactly the quoted amount.
    status, quote = owner.post("/api/buy/quote", {"offer_id": cheap, "kwh": 2})
    assert (status, quote["total"]) == (200, str(2 * TARIFF))
    untouched()
    seller_before = token.functions.balanceOf(seller).call()
    status, body = owner.post("/api/buy", {"quote": quote["quote"]})
    assert status == 202

    def settled() -> bool:
        agent.reporter.step()
        return not agent.store.unresolved()

    assert wait_until(settled, 60, interval=0.5)
    assert [r.status for r in agent.store.transactions()] == ["mined", "mined"]
    assert token.functions.balanceOf(buyer).call() == 8 * TARIFF
    assert token.functions.balanceOf(seller).call() == seller_before + 2 * TARIFF
    assert market.functions.purchasedKWh(buyer).call() == 2
    assert owner.post("/api/buy", {"quote": quote["quote"]})[0] == 409  # a quote buys once
