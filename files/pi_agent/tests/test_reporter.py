from __future__ import annotations

import pytest
from heliogrid_testing.fakechain import FakeChain

from heliogrid_agent.chain import NodeUnavailable, SendRejected
from heliogrid_agent.meter import UWH_PER_WH
from heliogrid_agent.reporter import BuyError, Reporter
from heliogrid_agent.store import Store


class Crash(Exception):
    """Stands for SIGKILL at a checkpoint: nothing after it in the process runs."""


def make(tmp_path, chain, account, clock, **kwargs) -> tuple[Reporter, Store]:
    store = Store(tmp_path / "agent.db")
    kwargs.setdefault("max_buy_price_per_kwh", 10**19)
    return Reporter(chain, store, account, expected_chain_id=1337, clock=clock, **kwargs), store


def produce(store: Store, wh: int, clock) -> None:
    """The meter persisted ``wh`` more watt-hours (after ``wh`` seconds at 3.6 kW)."""
    clock.advance(wh)
    total = store.total_uwh() + wh * UWH_PER_WH
    store.record_sample(total, wh * UWH_PER_WH, "2025-06-15", clock.time())


def test_no_transaction_before_the_first_whole_kwh(tmp_path, fake_chain, account, clock):
    reporter, store = make(tmp_path, fake_chain, account, clock)
    produce(store, 999, clock)
    reporter.step()
    assert fake_chain.sent == []


def test_each_whole_kwh_sends_one_transaction_with_the_cumulative_total(tmp_path, fake_chain, account, clock):
    reporter, store = make(tmp_path, fake_chain, account, clock)
    totals = []
    for _ in range(3):
        produce(store, 1000, clock)
        reporter.step()
        reporter.step()  # a second step finds nothing new to send
        totals.append(fake_chain.meter(account.address).total_wh)
    assert totals == [1000, 2000, 3000]
    assert len(fake_chain.sent) == 3
    assert fake_chain.meter(account.address).credited_kwh == 3
    assert [r.status for r in store.transactions()] == ["mined"] * 3


def test_report_carries_the_whole_counter_not_just_the_kwh(tmp_path, fake_chain, account, clock):
    reporter, store = make(tmp_path, fake_chain, account, clock)
    produce(store, 1234, clock)
    reporter.step()
    assert fake_chain.meter(account.address).total_wh == 1234
    assert fake_chain.meter(account.address).credited_kwh == 1


def test_node_down_keeps_the_counter_and_catches_up_in_one_report(tmp_path, fake_chain, account, clock):
    reporter, store = make(tmp_path, fake_chain, account, clock)
    fake_chain.up = False
    for _ in range(3):
        produce(store, 1000, clock)
        reporter.step()
    assert not reporter.status.node_up
    assert fake_chain.sent == []
    fake_chain.up = True
    reporter.step()
    m = fake_chain.meter(account.address)
    assert (m.total_wh, m.credited_kwh, len(fake_chain.sent)) == (3000, 3, 1)


def test_catch_up_respects_the_contracts_capacity_rule(tmp_path, clock, account):
    chain = FakeChain(clock, tolerance_percent=0)
    chain.register(account.address, owner="0x" + "22" * 20, capacity_watts=1000)
    reporter, store = make(tmp_path, chain, account, clock)
    # 2.5 kWh counted while only 3600 s of block time passed: 1 kW allows 1000 Wh, no more
    clock.advance(3600)
    chain.mine()
    store.record_sample(2500 * UWH_PER_WH, 2500 * UWH_PER_WH, "d", clock.time())
    reporter.step()
    assert chain.meter(account.address).total_wh == 1000
    clock.advance(3700)  # the first report was mined a block after it was sent
    reporter.step()
    second = chain.meter(account.address)
    assert second.credited_kwh == 2
    assert 2000 <= second.total_wh < 2100  # as much as 3699 s at 1 kW allows
    clock.advance(1800)
    reporter.step()
    assert chain.meter(account.address).total_wh == second.total_wh  # more Wh are due, but no whole kWh
    reporter.step()
    assert [r.status for r in store.transactions()] == ["mined", "mined"]  # nothing sent that would revert


def test_a_meter_silent_for_90_days_asks_for_one_report_window_only(tmp_path, clock, account):
    chain = FakeChain(clock, tolerance_percent=0, max_report_seconds=24 * 3600)
    chain.register(account.address, owner="0x" + "22" * 20, capacity_watts=1000)
    reporter, store = make(tmp_path, chain, account, clock)
    # 90 days at 1 kW counted on the SD card; the market counts at most one day of a silence.
    clock.advance(90 * 24 * 3600)
    chain.mine()
    store.record_sample(2160_000 * UWH_PER_WH, 2160_000 * UWH_PER_WH, "d", clock.time())
    reporter.step()
    assert chain.meter(account.address).total_wh == 24_000
    reporter.step()
    assert [r.status for r in store.transactions()] == ["mined"]  # one window asked, nothing that reverts
    assert reporter.status.reverts_in_a_row == 0


def test_a_market_without_a_report_window_takes_the_whole_silence(tmp_path, clock, account):
    chain = FakeChain(clock, tolerance_percent=0, max_report_seconds=None)
    chain.register(account.address, owner="0x" + "22" * 20, capacity_watts=1000)
    reporter, store = make(tmp_path, chain, account, clock)
    clock.advance(90 * 24 * 3600)
    chain.mine()
    store.record_sample(2160_000 * UWH_PER_WH, 2160_000 * UWH_PER_WH, "d", clock.time())
    reporter.step()
    assert chain.meter(account.address).total_wh == 2160_000


def test_restart_rebroadcasts_the_same_signed_transaction(tmp_path, fake_chain, account, clock):
    fake_chain.automine = False
    reporter, store = make(tmp_path, fake_chain, account, clock)
    produce(store, 1000, clock)
    reporter.step()
    (first,) = store.unresolved()
    fake_chain.forget_pool()  # the node restarted and lost its pool
    store.close()
    reporter2, store2 = make(tmp_path, fake_chain, account, clock)
    clock.advance(60)
    reporter2.step()
    assert fake_chain.sent == [first.raw_tx, first.raw_tx]  # same bytes, same nonce
    fake_chain.mine()
    reporter2.step()
    assert fake_chain.meter(account.address).total_wh == 1000
    assert [r.status for r in store2.transactions()] == ["mined"]


def test_pending_report_is_resent_after_resend_seconds_only(tmp_path, fake_chain, account, clock):
    fake_chain.automine = False
    reporter, store = make(tmp_path, fake_chain, account, clock, resend_seconds=30)
    produce(store, 1000, clock)
    reporter.step()
    fake_chain.forget_pool()
    clock.advance(10)
    reporter.step()
    assert len(fake_chain.sent) == 1
    clock.advance(25)
    reporter.step()
    assert len(fake_chain.sent) == 2


def test_only_one_report_is_in_flight(tmp_path, fake_chain, account, clock):
    fake_chain.automine = False
    reporter, store = make(tmp_path, fake_chain, account, clock)
    produce(store, 1000, clock)
    reporter.step()
    produce(store, 1000, clock)
    reporter.step()
    assert len(store.transactions()) == 1
    fake_chain.mine()
    clock.advance(1000)  # block time for the capacity rule
    reporter.step()  # settles the first, then reports the rest
    fake_chain.mine()
    reporter.step()
    assert fake_chain.meter(account.address).total_wh == 2000
    assert [r.nonce for r in store.transactions()] == [0, 1]


def test_reverted_report_is_followed_by_a_new_one_after_the_backoff(tmp_path, fake_chain, account, clock):
    reporter, store = make(tmp_path, fake_chain, account, clock, revert_backoff_seconds=15)
    produce(store, 1000, clock)
    original = fake_chain._report
    fake_chain._report = lambda sender, total: False  # a market that reverts for its own reasons
    reporter.step()  # sent, mined, reverted
    fake_chain._report = original
    reporter.step()  # settles it as reverted; the next report waits
    assert [r.status for r in store.transactions()] == ["reverted"]
    clock.advance(15)
    reporter.step()  # sends a new report
    reporter.step()  # settles it
    assert fake_chain.meter(account.address).total_wh == 1000
    assert [r.status for r in store.transactions()] == ["reverted", "mined"]
    assert reporter.status.reverts_in_a_row == 0


def sends_over(reporter, clock, seconds: int, poll: int = 2) -> list[float]:
    """Step the reporter every ``poll`` seconds for ``seconds``; the times at which a new report was signed."""
    times, seen = [], len(reporter.store.transactions())
    for _ in range(seconds // poll):
        clock.advance(poll)
        reporter.step()
        now = len(reporter.store.transactions())
        times += [clock.time()] * (now - seen)
        seen = now
    return times


def test_reverts_in_a_row_back_off_exponentially_up_to_the_cap(tmp_path, fake_chain, account, clock):
    reporter, store = make(
        tmp_path, fake_chain, account, clock, revert_backoff_seconds=10, revert_backoff_max_seconds=40
    )
    produce(store, 1000, clock)
    fake_chain._report = lambda sender, total: False
    start = clock.time()
    times = sends_over(reporter, clock, 240)
    gaps = [round(b - a) for a, b in zip([start, *times], times, strict=False)]
    # the first at once, then 10, 20, 40, 40... seconds after each revert (plus the poll that notices it)
    assert gaps[:6] == [2, 12, 22, 42, 42, 42]
    assert reporter.status.reverts_in_a_row == len(times)


def test_a_market_stricter_than_the_agent_knows_gets_smaller_reports_until_one_passes(
    tmp_path, fake_chain, account, clock
):
    fake_chain.register(account.address, owner="0x" + "22" * 20, capacity_watts=400_000)  # the rule never binds
    reporter, store = make(tmp_path, fake_chain, account, clock, revert_backoff_seconds=10)
    original = fake_chain._report

    def strict(sender, total):  # e.g. a report window shorter than the silence: at most 2.5 kWh at once
        m = fake_chain.meter(sender)
        return total - m.total_wh <= 2500 and original(sender, total)

    fake_chain._report = strict
    produce(store, 8000, clock)
    sends_over(reporter, clock, 120)
    totals = [r.total_wh for r in store.transactions()]
    assert totals[:3] == [8000, 4000, 2000]  # halved after each revert, then accepted
    assert fake_chain.meter(account.address).total_wh >= 2000
    assert reporter.status.reverts_in_a_row == 0
    sends_over(reporter, clock, 300)
    assert fake_chain.meter(account.address).credited_kwh == 8  # everything, each kWh once
    assert sum(fake_chain.credit_events) == 8


def test_the_backoff_survives_a_restart(tmp_path, fake_chain, account, clock):
    reporter, store = make(tmp_path, fake_chain, account, clock, revert_backoff_seconds=100)
    produce(store, 1000, clock)
    fake_chain._report = lambda sender, total: False
    reporter.step()
    reporter.step()
    assert [r.status for r in store.transactions()] == ["reverted"]
    again = Reporter(fake_chain, store, account, expected_chain_id=1337, clock=clock, revert_backoff_seconds=100)
    assert sends_over(again, clock, 90) == []
    assert len(sends_over(again, clock, 20)) == 1


def test_a_wall_clock_set_back_does_not_hold_reports_longer_than_the_cap(tmp_path, fake_chain, account, clock):
    reporter, store = make(
        tmp_path, fake_chain, account, clock, revert_backoff_seconds=10, revert_backoff_max_seconds=40
    )
    produce(store, 1000, clock)
    reporter.status.reverts_in_a_row, reporter.status.next_report_at = 1, clock.time() + 86_400  # clock went back a day
    reporter.step()
    reporter.step()
    assert [r.status for r in store.transactions()] == ["mined"]


def test_refused_send_is_retried_after_resend_seconds_not_at_every_step(tmp_path, fake_chain, account, clock):
    reporter, store = make(tmp_path, fake_chain, account, clock, resend_seconds=30)
    produce(store, 1000, clock)
    tries = []

    def refuse(raw: bytes) -> str:
        tries.append(clock.time())
        raise SendRejected("insufficient funds for gas * price + value")

    fake_chain.send_raw = refuse
    reporter.step()
    for _ in range(45):  # 90 s of 2 s polls
        clock.advance(2)
        reporter.step()
    assert [round(t - tries[0]) for t in tries] == [0, 30, 60, 90]
    assert len(store.transactions()) == 1  # the same signed transaction each time


def test_paused_market_gets_no_transaction_and_the_energy_waits_for_the_unpause(tmp_path, fake_chain, account, clock):
    reporter, store = make(tmp_path, fake_chain, account, clock)
    fake_chain.is_paused = True
    for _ in range(3):
        produce(store, 1000, clock)
        reporter.step()
    assert fake_chain.sent == []
    assert store.transactions() == []
    assert reporter.status.market_paused is True
    assert "market is paused" in reporter.status.problem
    assert store.total_uwh() == 3000 * UWH_PER_WH  # counted all along

    fake_chain.is_paused = False
    fake_chain.mine()  # the admin's unpause is a transaction: it is on chain from the next block
    reporter.step()
    reporter.step()
    assert reporter.status.market_paused is False
    assert reporter.status.problem is None
    assert fake_chain.meter(account.address).credited_kwh == 3
    assert fake_chain.credit_events == [3]  # one report carried the whole pause, credited once


def test_a_signed_report_waiting_in_the_outbox_is_not_broadcast_while_paused(tmp_path, fake_chain, account, clock):
    reporter, store = make(tmp_path, fake_chain, account, clock)
    produce(store, 1000, clock)
    reporter.checkpoint = lambda step: (_ for _ in ()).throw(Crash()) if step == "persisted" else None
    with pytest.raises(Crash):
        reporter.step()  # signed and persisted, killed before the broadcast
    fake_chain.is_paused = True
    again, _ = make(tmp_path, fake_chain, account, clock)
    for _ in range(5):
        clock.advance(60)
        again.step()
    assert fake_chain.sent == []
    fake_chain.is_paused = False
    fake_chain.mine()  # the admin's unpause is a transaction: it is on chain from the next block
    again.step()
    again.step()
    assert [r.status for r in store.transactions()] == ["mined"]
    assert fake_chain.meter(account.address).credited_kwh == 1


def test_ether_balance_and_low_gas_are_exposed(tmp_path, fake_chain, account, clock):
    from heliogrid_agent.metrics import AgentMetrics
    from heliogrid_agent.reporter import SLOW_OBSERVE_SECONDS

    metrics = AgentMetrics()
    reporter, _store = make(tmp_path, fake_chain, account, clock, metrics=metrics, low_gas_transactions=50)
    per_tx = 300_000 * 10**9  # gas limit x the fake chain's gas price
    fake_chain.ether[account.address.lower()] = 10 * per_tx
    reporter.step()
    assert (reporter.status.ether_wei, reporter.status.transactions_left, reporter.status.gas_low) == (
        10 * per_tx,
        10,
        True,
    )
    value = metrics.registry.get_sample_value
    assert value("heliogrid_agent_gas_low") == 1
    assert value("heliogrid_agent_ether_balance_wei") == 10 * per_tx
    assert value("heliogrid_agent_gas_transactions_left") == 10
    fake_chain.ether[account.address.lower()] = 500 * per_tx
    reporter.step()
    assert reporter.status.gas_low is True, "ether and gas price are read every SLOW_OBSERVE_SECONDS, not each step"
    clock.advance(SLOW_OBSERVE_SECONDS)
    reporter.step()
    assert reporter.status.gas_low is False
    assert value("heliogrid_agent_gas_low") == 0


def test_transaction_whose_nonce_was_taken_is_marked_dropped(tmp_path, fake_chain, account, clock):
    fake_chain.automine = False
    reporter, store = make(tmp_path, fake_chain, account, clock)
    produce(store, 1000, clock)
    reporter.step()
    # Someone else used the key with the same nonce (e.g. a manual transaction) and it was mined.
    fake_chain.forget_pool()
    fake_chain.nonces[account.address.lower()] = 1
    reporter.step()
    assert store.transactions()[0].status == "dropped"
    fake_chain.mine()
    reporter.step()
    fake_chain.mine()
    reporter.step()
    assert fake_chain.meter(account.address).total_wh == 1000
    assert store.transactions()[-1].nonce == 1


def test_local_counter_behind_the_chain_adopts_the_chain_total(tmp_path, fake_chain, account, clock):
    reporter, store = make(tmp_path, fake_chain, account, clock)
    m = fake_chain.meter(account.address)
    fake_chain.meters[account.address.lower()] = m.__class__(**{**m.__dict__, "total_wh": 5000, "credited_kwh": 5})
    reporter.step()
    assert store.total_uwh() == 5000 * UWH_PER_WH
    assert fake_chain.sent == []


def test_unregistered_meter_reports_nothing_and_says_why(tmp_path, clock, account):
    chain = FakeChain(clock)
    reporter, store = make(tmp_path, chain, account, clock)
    produce(store, 2000, clock)
    reporter.step()
    assert chain.sent == []
    assert "is not registered" in reporter.status.problem


def test_wrong_chain_id_reports_nothing(tmp_path, clock, account):
    chain = FakeChain(clock, chain_id=5)
    chain.register(account.address, owner=account.address, capacity_watts=4000)
    reporter, store = make(tmp_path, chain, account, clock)
    produce(store, 2000, clock)
    reporter.step()
    assert chain.sent == []
    assert "chain id 5" in reporter.status.problem


def test_paused_selling_reports_nothing_until_resumed(tmp_path, fake_chain, account, clock):
    reporter, store = make(tmp_path, fake_chain, account, clock)
    store.set_selling_paused(True)
    produce(store, 2000, clock)
    reporter.step()
    assert fake_chain.sent == []
    store.set_selling_paused(False)
    reporter.step()
    assert fake_chain.meter(account.address).total_wh == 2000


def test_sale_callback_gets_the_kwh_sold(tmp_path, fake_chain, account, clock):
    sales = []
    fake_chain.automine = False
    reporter, store = make(tmp_path, fake_chain, account, clock, on_sale=sales.append)
    produce(store, 2500, clock)
    reporter.step()
    fake_chain.mine()
    reporter.step()
    assert sales == [2]


CHECKPOINTS = ["signed", "persisted", "broadcast", "marked_sent", "settled"]


@pytest.mark.parametrize("crash_at", CHECKPOINTS)
@pytest.mark.parametrize("occurrence", [1, 2])
def test_crash_between_any_two_steps_of_a_report_never_double_credits(
    tmp_path, fake_chain, account, clock, crash_at, occurrence
):
    """Kill the agent at each step of a report (its 1st or 2nd time there); restart; the chain ends equal."""
    seen = {"n": 0}

    def checkpoint(step: str) -> None:
        if step == crash_at:
            seen["n"] += 1
            if seen["n"] == occurrence:
                raise Crash(step)

    reporter, store = make(tmp_path, fake_chain, account, clock, checkpoint=checkpoint)
    crashed = False
    for _ in range(3):
        produce(store, 1000, clock)
        try:
            reporter.step()
        except Crash:
            crashed = True
            store.close()
            reporter, store = make(tmp_path, fake_chain, account, clock)  # a fresh process
            clock.advance(31)
    assert crashed
    for _ in range(3):
        clock.advance(600)  # enough block time for the capacity rule to allow the rest
        reporter.step()
    m = fake_chain.meter(account.address)
    assert m.total_wh == store.total_uwh() // UWH_PER_WH == 3000
    assert m.credited_kwh == 3
    assert sum(fake_chain.credit_events) == 3  # nothing credited twice
    nonces = [tx.nonce for tx in fake_chain.mined]
    assert nonces == list(range(len(nonces)))
    # every distinct signed transaction in the outbox has its own nonce
    rows = store.transactions()
    assert len({r.nonce for r in rows}) == len(rows)


def test_buy_approves_then_buys_in_nonce_order(tmp_path, fake_chain, account, clock):
    reporter, store = make(tmp_path, fake_chain, account, clock)
    seller = "0x" + "33" * 20
    fake_chain.offers[1] = fake_chain.get_offer(1).__class__(1, seller, seller, 5, 2 * 10**18, True)
    fake_chain.balances[account.address.lower()] = 10 * 10**18
    reporter.step()
    hashes = reporter.buy(1, 3)
    assert len(hashes) == 2
    assert [r.kind for r in store.transactions()] == ["approve", "buy"]
    reporter.step()
    assert fake_chain.get_offer(1).remaining_kwh == 2
    assert fake_chain.balances[account.address.lower()] == 4 * 10**18
    assert [r.status for r in store.transactions()] == ["mined", "mined"]


@pytest.mark.parametrize(("offer_id", "kwh", "message"), [
    (1, 9, "has 5 kWh left, not 9"),
    (2, 1, "offer 2 is not open"),
    (1, 0, "buy at least 1 kWh"),
    (1, 5, "cost 10000000000000000000 token units"),
])  # fmt: skip
def test_buy_that_cannot_succeed_is_refused_before_signing(
    tmp_path, fake_chain, account, clock, offer_id, kwh, message
):
    reporter, store = make(tmp_path, fake_chain, account, clock)
    seller = "0x" + "33" * 20
    fake_chain.offers[1] = fake_chain.get_offer(1).__class__(1, seller, seller, 5, 2 * 10**18, True)
    fake_chain.balances[account.address.lower()] = 3 * 10**18
    reporter.step()
    with pytest.raises(BuyError, match=message):
        reporter.buy(offer_id, kwh)
    assert store.transactions() == []


def test_buy_with_the_node_down_raises_node_unavailable(tmp_path, fake_chain, account, clock):
    reporter, _store = make(tmp_path, fake_chain, account, clock)
    fake_chain.up = False
    with pytest.raises(NodeUnavailable):
        reporter.buy(1, 1)


def test_buy_above_the_owners_cap_is_refused_before_signing(tmp_path, fake_chain, account, clock):
    reporter, store = make(tmp_path, fake_chain, account, clock, max_buy_price_per_kwh=10**18)
    seller = "0x" + "33" * 20
    fake_chain.offers[1] = fake_chain.get_offer(1).__class__(1, seller, seller, 5, 10**18 + 1, True)
    fake_chain.balances[account.address.lower()] = 100 * 10**18
    reporter.step()
    with pytest.raises(BuyError, match=r"above the owner's cap buy.max_price_per_kwh \(1000000000000000000"):
        reporter.buy(1, 1)
    assert store.transactions() == []


def test_buying_is_off_until_the_owner_sets_a_cap(tmp_path, fake_chain, account, clock):
    reporter, store = make(tmp_path, fake_chain, account, clock, max_buy_price_per_kwh=0)
    seller = "0x" + "33" * 20
    fake_chain.offers[1] = fake_chain.get_offer(1).__class__(1, seller, seller, 5, 1, True)
    fake_chain.balances[account.address.lower()] = 100
    with pytest.raises(BuyError, match="buying is off"):
        reporter.buy(1, 1)
    assert store.transactions() == []


def test_buy_while_the_market_is_paused_is_refused(tmp_path, fake_chain, account, clock):
    reporter, store = make(tmp_path, fake_chain, account, clock)
    seller = "0x" + "33" * 20
    fake_chain.offers[1] = fake_chain.get_offer(1).__class__(1, seller, seller, 5, 1, True)
    fake_chain.balances[account.address.lower()] = 100
    fake_chain.is_paused = True
    with pytest.raises(BuyError, match="market is paused"):
        reporter.buy(1, 1)
    assert store.transactions() == []


def test_an_idle_step_reads_three_things_and_the_rest_every_slow_interval(tmp_path, fake_chain, account, clock):
    """A Pi polls every 2 s: an idle step at a new block asks the node for the head, the meter and the pause flag."""
    from heliogrid_agent.reporter import SLOW_OBSERVE_SECONDS

    reporter, _store = make(tmp_path, fake_chain, account, clock)
    reporter.step()
    calls: list[str] = []
    for name in ("block_number", "syncing", "peer_count", "get_meter", "paused", "ether_balance", "gas_price"):
        original = getattr(fake_chain, name)
        setattr(fake_chain, name, lambda *a, _n=name, _f=original: (calls.append(_n), _f(*a))[1])
    clock.advance(2)
    reporter.step()
    assert sorted(calls) == ["block_number", "get_meter", "paused"]
    calls.clear()
    clock.advance(SLOW_OBSERVE_SECONDS)
    reporter.step()
    assert sorted(calls) == sorted(
        ["block_number", "get_meter", "paused", "syncing", "peer_count", "ether_balance", "gas_price"]
    )


def test_the_oldest_unconfirmed_report_is_exposed_until_it_is_mined(tmp_path, fake_chain, account, clock):
    from heliogrid_agent.metrics import AgentMetrics

    metrics = AgentMetrics()
    fake_chain.automine = False
    reporter, store = make(tmp_path, fake_chain, account, clock, metrics=metrics)
    value = metrics.registry.get_sample_value
    reporter.step()
    assert value("heliogrid_agent_oldest_unconfirmed_report_timestamp_seconds") == 0
    produce(store, 1000, clock)
    reporter.step()
    signed_at = store.unresolved()[0].created_at
    clock.advance(600)
    reporter.step()
    assert value("heliogrid_agent_oldest_unconfirmed_report_timestamp_seconds") == signed_at
    fake_chain.mine()
    reporter.step()
    assert value("heliogrid_agent_oldest_unconfirmed_report_timestamp_seconds") == 0


# -- reading the chain only when it moved --------------------------------------------------------------------
CHAIN_CALLS = (
    "chain_id", "block_number", "latest_timestamp", "syncing", "peer_count", "nonce", "gas_price", "send_raw",
    "receipt", "get_meter", "tolerance_percent", "max_report_seconds", "paused", "ether_balance", "token_balance",
    "allowance", "get_offer", "next_offer_id", "ask_price",
)  # fmt: skip
OWNER = "0x" + "22" * 20


def record_calls(chain) -> list[str]:
    """From now on, the name of each of ``chain``'s CHAIN_CALLS the agent makes, in order."""
    calls: list[str] = []
    for name in CHAIN_CALLS:
        original = getattr(chain, name)
        setattr(chain, name, lambda *a, _n=name, _f=original: (calls.append(_n), _f(*a))[1])
    return calls


def clique(clock, account, period: int = 5, **kwargs) -> FakeChain:
    """A chain that seals a block every ``period`` seconds, as the lab's Clique does every 5 s."""
    chain = FakeChain(clock, period=period, **kwargs)
    chain.register(account.address, owner=OWNER, capacity_watts=4000)
    return chain


def test_a_step_at_an_unchanged_block_asks_the_node_only_for_the_head(tmp_path, clock, account):
    chain = clique(clock, account)
    reporter, _store = make(tmp_path, chain, account, clock)
    reporter.step()
    calls = record_calls(chain)
    clock.advance(2)
    reporter.step()
    clock.advance(2)
    reporter.step()
    assert calls == ["block_number", "block_number"]
    assert reporter.status.meter == chain.meter(account.address)  # what the previous step read stands
    calls.clear()
    clock.advance(1)  # 5 s: the next block
    reporter.step()
    assert sorted(calls) == ["block_number", "get_meter", "paused"]


def test_a_restarted_agent_reads_everything_at_its_first_step_whatever_the_block(tmp_path, clock, account):
    chain = clique(clock, account)
    reporter, store = make(tmp_path, chain, account, clock)
    reporter.step()
    store.close()
    again, _store = make(tmp_path, chain, account, clock)
    calls = record_calls(chain)
    again.step()
    assert {"get_meter", "paused", "syncing", "ether_balance"} <= set(calls)


def test_after_the_node_was_unreachable_the_next_step_reads_everything(tmp_path, clock, account):
    chain = clique(clock, account)
    reporter, _store = make(tmp_path, chain, account, clock)
    reporter.step()
    chain.up = False
    clock.advance(1)
    reporter.step()
    assert not reporter.status.node_up
    chain.up = True
    calls = record_calls(chain)
    clock.advance(1)  # still the block of the last good step
    reporter.step()
    assert reporter.status.node_up
    assert sorted(calls) == sorted(
        ["block_number", "get_meter", "paused", "syncing", "peer_count", "ether_balance", "gas_price"]
    )


def test_a_kwh_crossing_at_an_unchanged_block_is_reported_at_once(tmp_path, clock, account):
    chain = clique(clock, account)
    reporter, store = make(tmp_path, chain, account, clock)
    clock.advance(1000)  # block time for the capacity rule
    reporter.step()
    calls = record_calls(chain)
    clock.advance(1)  # the same block: the meter's kWh does not wait for the next one
    store.record_sample(1000 * UWH_PER_WH, 1000 * UWH_PER_WH, "2025-06-15", clock.time())
    reporter.step()
    assert "send_raw" in calls
    assert "get_meter" not in calls[: calls.index("send_raw")]  # sent from the meter read at this block
    assert chain.meter(account.address).total_wh == 1000
    assert len(chain.sent) == 1


def test_after_its_own_transaction_the_agent_reads_the_meter_again_even_at_the_same_block(tmp_path, clock, account):
    chain = clique(clock, account, automine=False)
    reporter, store = make(tmp_path, chain, account, clock)
    clock.advance(1000)
    reporter.step()
    store.record_sample(1000 * UWH_PER_WH, 1000 * UWH_PER_WH, "2025-06-15", clock.time())
    reporter.step()  # signed and broadcast; it waits in the pool for the next block
    assert len(chain.sent) == 1
    calls = record_calls(chain)
    clock.advance(1)
    reporter.step()
    assert {"get_meter", "paused", "receipt"} <= set(calls)
    calls.clear()
    clock.advance(1)
    reporter.step()  # the same block again: nothing can have changed, the receipt cannot have appeared
    assert calls == ["block_number"]


def test_a_receipt_that_appears_with_the_next_block_is_settled_and_nothing_is_counted_twice(tmp_path, clock, account):
    chain = clique(clock, account, automine=False)
    reporter, store = make(tmp_path, chain, account, clock)
    produce(store, 1000, clock)
    reporter.step()  # the report waits in the pool
    for _ in range(2):  # 4 s: the same block
        clock.advance(2)
        reporter.step()
    assert [r.status for r in store.transactions()] == ["sent"]
    chain.mine()  # the next block holds it
    reporter.step()
    assert [r.status for r in store.transactions()] == ["mined"]
    assert reporter.status.meter.total_wh == 1000  # read again after the settle
    clock.advance(2)
    reporter.step()  # the block of the settle: nothing is reported twice
    assert (len(chain.sent), reporter.status.meter.total_wh) == (1, 1000)
    chain.automine = True
    for _ in range(2):
        produce(store, 1000, clock)
        reporter.step()
        reporter.step()
    m = chain.meter(account.address)
    assert (m.total_wh, m.credited_kwh) == (3000, 3)
    assert sum(chain.credit_events) == 3  # each kWh credited once
    assert [r.status for r in store.transactions()] == ["mined"] * 3
    assert [r.nonce for r in store.transactions()] == [0, 1, 2]


def test_a_transaction_waiting_at_an_unchanged_block_is_still_resent_after_resend_seconds(tmp_path, clock, account):
    chain = clique(clock, account, period=100, automine=False)
    reporter, store = make(tmp_path, chain, account, clock, resend_seconds=30)
    produce(store, 1000, clock)
    reporter.step()
    chain.forget_pool()  # the node restarted and lost it
    clock.advance(10)
    reporter.step()  # reads its receipt once at this block: none
    calls = record_calls(chain)
    clock.advance(10)
    reporter.step()
    assert (len(chain.sent), "receipt" in calls) == (1, False)
    clock.advance(15)  # 35 s after the broadcast, still the same block
    reporter.step()
    assert len(chain.sent) == 2
    assert chain.sent[1] == chain.sent[0]  # the same signed bytes
    chain.mine()
    reporter.step()
    assert [r.status for r in store.transactions()] == ["mined"]
    assert chain.meter(account.address).total_wh == 1000


def test_balances_are_read_again_only_when_the_chain_moved(tmp_path, clock, account):
    chain = clique(clock, account)
    reporter, _store = make(tmp_path, chain, account, clock)
    reporter.step()
    calls = record_calls(chain)
    assert reporter.refresh_balances() == {"meter": 0, "owner": 0}
    assert calls.count("token_balance") == 2
    clock.advance(2)
    reporter.step()
    assert reporter.refresh_balances() == {"meter": 0, "owner": 0}
    assert calls.count("token_balance") == 2  # the same block: not read again
    chain.balances[OWNER] = 7 * 10**18  # a sale, sealed in the next block
    clock.advance(3)
    reporter.step()
    assert reporter.refresh_balances() == {"meter": 0, "owner": 7 * 10**18}
    assert calls.count("token_balance") == 4
