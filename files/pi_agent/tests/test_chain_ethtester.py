"""The agent against the real compiled contracts on an in-process EVM (eth-tester): no mocks of the contract."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from heliogrid_testing.chainkit import DEPLOYER_KEY, METER_KEY, REPORT_WINDOW, TARIFF, artifacts_available, setup_market

from heliogrid_agent.agent import Agent
from heliogrid_agent.chain import Web3Chain, load_deployment
from heliogrid_agent.config import parse_config
from heliogrid_agent.meter import UWH_PER_WH
from heliogrid_agent.reporter import Reporter
from heliogrid_agent.sensors import SimulatedInstallation
from heliogrid_agent.store import Store

pytestmark = [
    pytest.mark.chain,
    pytest.mark.skipif(not artifacts_available(), reason="contracts/build/*.json not compiled yet"),
]


@pytest.fixture
def w3():
    from web3 import EthereumTesterProvider, Web3

    w3 = Web3(EthereumTesterProvider())
    funder = w3.eth.accounts[0]
    for key in (DEPLOYER_KEY, METER_KEY):
        w3.eth.send_transaction({"from": funder, "to": Account.from_key(key).address, "value": 10**21})
    return w3


def next_block(w3, seconds: int = 1) -> None:
    """Seal an empty block ``seconds`` later, as a Clique sealer does every period."""
    tester = w3.provider.ethereum_tester
    tester.time_travel(w3.eth.get_block("latest")["timestamp"] + seconds)
    tester.mine_blocks(1)


def test_simulated_installation_sells_kwh_and_on_chain_credit_matches_the_counter(tmp_path, w3, clock):
    meter_account = Account.from_key(METER_KEY)
    kit = setup_market(
        w3, tmp_path, meter_account.address, meter_account.address, capacity_watts=4_000_000_000, ask_price=2 * 10**17
    )
    chain = Web3Chain("http://unused", load_deployment(kit["record"]), w3=w3)
    cfg = parse_config(
        {
            "meter": {"sensor": "simulated", "interval_seconds": 1},
            "sensor": {
                "simulated": {
                    "panels": 10,
                    "panel_peak_watts": 360_000,
                    "clear_sky": True,
                    "noise": 0.0,
                    "house_watts": 0,
                }
            },
        }
    )
    store = Store(tmp_path / "agent.db")
    reporter = Reporter(
        chain, store, meter_account, expected_chain_id=w3.eth.chain_id, clock=clock, max_buy_price_per_kwh=10**18
    )
    agent = Agent(cfg, SimulatedInstallation(cfg.sensor, clock), store, reporter, clock)
    for _ in range(12):  # 3.6 MW: one kWh a second
        clock.advance(1)
        agent.sample_once()
        next_block(w3)
        reporter.step()
    for _ in range(3):
        next_block(w3)
        reporter.step()
    m = kit["market"].functions.getMeter(meter_account.address).call()
    total_wh, credited = m[5], m[6]
    assert credited == store.total_uwh() // UWH_PER_WH // 1000 == 11  # the first second is a baseline
    assert total_wh <= store.total_uwh() // UWH_PER_WH
    assert kit["token"].functions.balanceOf(meter_account.address).call() == credited * TARIFF
    events = kit["market"].events.ProductionReported().get_logs(from_block=0)
    assert sum(e["args"]["creditedKWh"] for e in events) == credited
    assert all(r.status == "mined" for r in store.transactions())

    # buy energy back from the meter's own offer, through the same outbox and nonce sequence
    offers = reporter.open_offers(max_age=0)
    assert offers
    assert offers[0].seller == meter_account.address
    reporter.buy(offers[0].offer_id, 1)
    reporter.step()
    assert kit["market"].functions.purchasedKWh(meter_account.address).call() == 1
    nonces = [r.nonce for r in store.transactions()]
    # consecutive, each used once (nonce 0 was the owner's setAskPrice in the setup)
    assert nonces == list(range(1, len(nonces) + 1))


def test_replayed_report_after_a_lost_database_row_credits_nothing(tmp_path, w3, clock):
    """A restart that lost the 'mined' mark re-broadcasts the same bytes: the chain answers nonce too low."""
    meter_account = Account.from_key(METER_KEY)
    kit = setup_market(w3, tmp_path, meter_account.address, meter_account.address, capacity_watts=4_000_000_000)
    chain = Web3Chain("http://unused", load_deployment(kit["record"]), w3=w3)
    store = Store(tmp_path / "agent.db")
    reporter = Reporter(chain, store, meter_account, expected_chain_id=w3.eth.chain_id, clock=clock)
    store.record_sample(1500 * UWH_PER_WH, 1500 * UWH_PER_WH, "d", clock.time())
    next_block(w3, 5)
    reporter.step()
    (row,) = store.transactions()
    store.update_transaction(row.id, status="signed")  # as if killed before recording anything
    again = Reporter(chain, store, meter_account, expected_chain_id=w3.eth.chain_id, clock=clock)
    again.step()
    again.step()
    m = kit["market"].functions.getMeter(meter_account.address).call()
    assert (m[5], m[6]) == (1500, 1)
    assert [r.status for r in store.transactions()] == ["mined"]
    assert kit["token"].functions.balanceOf(meter_account.address).call() == TARIFF


def test_the_markets_report_window_is_read_and_a_record_from_before_it_has_none(tmp_path, w3):
    meter_account = Account.from_key(METER_KEY)
    kit = setup_market(w3, tmp_path, meter_account.address, meter_account.address, capacity_watts=4_000_000_000)
    deployment = load_deployment(kit["record"])
    assert Web3Chain("http://unused", deployment, w3=w3).max_report_seconds() == REPORT_WINDOW
    old_abi = [e for e in deployment.market_abi if e.get("name") != "maxReportSeconds"]
    old = dataclasses.replace(deployment, market_abi=old_abi)
    assert Web3Chain("http://unused", old, w3=w3).max_report_seconds() is None
