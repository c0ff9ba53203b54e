"""The ask price against the in-memory chain, for what a real node cannot be told to do: forget a transaction."""

from __future__ import annotations

from heliogrid_agent.askprice import AskPrice
from heliogrid_agent.reporter import Reporter
from heliogrid_agent.store import Store

PRICE = 10**18


def test_an_ask_whose_nonce_was_taken_is_sent_again_once(tmp_path, fake_chain, account, clock):
    fake_chain.register(account.address, owner=account.address, capacity_watts=4000)
    fake_chain.automine = False
    store = Store(tmp_path / "agent.db")
    reporter = Reporter(fake_chain, store, account, expected_chain_id=1337, clock=clock)
    AskPrice(reporter, configured=PRICE)
    reporter.step()
    # The node lost it, and another transaction of the same key took its nonce.
    fake_chain.forget_pool()
    fake_chain.nonces[account.address.lower()] = 1
    reporter.step()
    assert [(row.kind, row.status) for row in store.transactions()] == [("ask", "dropped"), ("ask", "sent")]
    for _ in range(3):
        fake_chain.mine()
        clock.advance(1)
        reporter.step()
    assert fake_chain.ask_price(account.address) == PRICE
    assert [row.status for row in store.transactions()] == ["dropped", "mined"]
