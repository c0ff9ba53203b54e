"""Fault cases on the lab after site.yml: sealers stopped (and the alert a stopped sealer fires), a Pi's node
stopped, a Pi cut off, a Pi rebooted, an agent SIGKILLed again and again. Each test asserts the behaviour and prints
its figure ("FIGURE: ...", run pytest with -s), puts back what it broke (in `finally`), and returns only once the
network is healthy again: every node's geth (and every agent) active, all heads in step, the chain advancing, every
Pi peered with a miner.

Durations come from the environment, with small CI defaults:
  HELIOGRID_FAULT_SECONDS (30)  how long a node stays stopped or a Pi cut off
  HELIOGRID_FAULT_KILLS (5)     how many times the agent is SIGKILLed (bench/agent_kills.py: 100 and more)
  HELIOGRID_FAULT_AIMED (1)     how many of those kills wait for a kWh crossing, to land while a report is in flight
  HELIOGRID_FAULT_SEED          seed of the kill moments (printed, for a replay); random by default
The cheap cases come first. The last three each wait for a Pi to complete a kWh (about 30 s at 120 kW): pi2's node
outage and pi3's kills run side by side in one test (they share only the chain), then pi2 is rebooted. Chain
figures are read through the stats node's RPC (heliogrid_testing/chain.py), each agent's account inside its Pi
(heliogrid_testing/agents.py).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass

import pytest

from heliogrid_testing import agents
from heliogrid_testing.chain import Contracts, eventually, head_number, heads, in_step, node_ids, on_each, period, rpc
from lab import lab

FAULT_SECONDS = float(os.environ.get("HELIOGRID_FAULT_SECONDS", "30"))
KILLS = int(os.environ.get("HELIOGRID_FAULT_KILLS", "5"))
AIMED = int(os.environ.get("HELIOGRID_FAULT_AIMED", "1"))
SEED = int(os.environ.get("HELIOGRID_FAULT_SEED") or random.randrange(10**6))
PERIOD = period()
HEALTHY_WITHIN = 300  # s for the whole network to be healthy again once the fault is undone
RESYNC_WITHIN = 180  # s for a reconnected Pi to follow the head again (geth redials a static peer within ~35 s)
BOOT_WITHIN = 180  # s from `podman restart` of a Pi until its geth and agent are active
KILL_DELAY = 12  # s: each kill comes at a random moment within this long after the agent's (re)start
MONITOR = "hg-stats1"  # the lab's monitoring host (inventories/lab: stats1 is in `monitoring`)
SINK_FILE = "/var/lib/heliogrid-webhook-sink/alerts.jsonl"  # the webhook sink's record (group_vars/monitoring.yml)
FIRE_WITHIN = 300  # s: 3 missed turns (3 x 3 periods of 5 s), a scrape, an evaluation, Alertmanager's group_wait
RESOLVE_WITHIN = 300  # s: the sealer's next turn, a scrape, an evaluation, Alertmanager's group_interval


@dataclass(frozen=True)
class Hosts:
    miners: list[str]
    pis: list[str]
    every: list[str]
    miner_ids: set[str]


@pytest.fixture(scope="module")
def hosts(site) -> Hosts:
    miners, pis = lab.inventory_hosts("miners"), lab.inventory_hosts("pis")
    every = miners + lab.inventory_hosts("stats") + pis
    return Hosts(miners, pis, every, set(node_ids(miners).values()))


@pytest.fixture(scope="module")
def contracts(site) -> Iterator[Contracts]:
    reader = Contracts("stats1")
    yield reader
    reader.close()


def health_problems(h: Hosts) -> list[str]:
    """What keeps the network from being healthy now (empty when it is)."""
    problems = []
    units = {host: ["geth", agents.UNIT] if host in h.pis else ["geth"] for host in h.every}
    down = on_each(h.every, lambda host: [u for u in units[host] if not agents.active(host, u)])
    problems += [f"{host}: {', '.join(u)} not active" for host, u in down.items() if u]
    views = heads(h.every)
    numbers = {host: v.number if v else None for host, v in views.items()}
    if not in_step(views):
        problems.append(f"heads not in step: {numbers}")
    newest = max((v.time for v in views.values() if v), default=0)
    if time.time() - newest > 3 * PERIOD:
        problems.append(f"no block for {time.time() - newest:.0f} s")
    problems += [f"{pi} has no miner peer" for pi in h.pis if views[pi] and not set(views[pi].peers) & h.miner_ids]
    return problems


def since(moment: float) -> float:
    return time.monotonic() - moment


last_healthy = float("-inf")  # when the network was last seen healthy (time.monotonic())


def wait_healthy(h: Hosts, when: str) -> None:
    global last_healthy
    if when == "before" and since(last_healthy) < 2 * PERIOD:
        return  # the previous test's teardown has just seen it healthy
    last: list[str] = []

    def healthy() -> bool:
        last[:] = health_problems(h)
        return not last

    started = time.monotonic()
    if not eventually(healthy, timeout=HEALTHY_WITHIN, interval=PERIOD):
        pytest.fail(f"the network is not healthy {when} the fault, after {HEALTHY_WITHIN} s: {last}")
    last_healthy = time.monotonic()
    if when == "after":
        print(f"FIGURE: network healthy again {since(started):.0f} s after the fault was undone")


@pytest.fixture
def healthy(hosts) -> Iterator[Hosts]:
    """A healthy network before the test, and again after it (the test undoes its fault in `finally`)."""
    wait_healthy(hosts, "before")
    yield hosts
    wait_healthy(hosts, "after")


def head(host: str) -> int:
    return head_number(host)


def stop(host: str, unit: str = "geth") -> None:
    lab.podman_exec(f"hg-{host}", "systemctl", "stop", unit)


def start(host: str, unit: str = "geth") -> None:
    lab.podman_exec(f"hg-{host}", "systemctl", "start", unit)


def unit_moment(host: str, unit: str, name: str) -> float:
    """A systemd *TimestampMonotonic property in seconds: the same kernel clock as this process's time.monotonic()."""
    return int(agents.unit_properties(host, unit, name)[name]) / 1e6


# --- sealers, and the alert a stopped one fires --------------------------------------------------------------


def webhook_alerts(name: str, status: str, signer: str) -> int:
    """How many `name` alerts for `signer` the lab's webhook sink has received with `status` (firing, resolved)."""
    lines = lab.podman_exec(MONITOR, "cat", SINK_FILE, check=False).stdout.splitlines()
    return sum(
        1
        for line in lines
        for alert in json.loads(line)["notification"]["alerts"]
        if alert["labels"]["alertname"] == name
        and alert["labels"].get("signer", "").lower() == signer
        and alert["status"] == status
    )


def test_sealers_stopped_one_then_two_the_chain_goes_on_then_stalls_and_missed_turns_fires_and_resolves(healthy):
    """miner3 stops: the two others seal on, and HelioGridSealerMissedTurns for miner3 reaches the lab's webhook
    (roles/monitoring). Meanwhile miner2 stops too: one sealer of three cannot seal on (Clique's rule), and the chain
    resumes once miner2 is back. miner3 starts again and the alert resolves."""
    signer = rpc("miner3", "eth_coinbase").lower()
    missed = "HelioGridSealerMissedTurns"
    before = webhook_alerts(missed, "firing", signer), webhook_alerts(missed, "resolved", signer)
    stopped: list[str] = []
    try:
        stop("miner3")
        stopped.append("miner3")
        assert not agents.active("miner3", "geth")
        first, miner3_stopped = head("miner1"), time.monotonic()
        advanced = eventually(lambda: head("miner1") >= first + 2, timeout=4 * PERIOD, interval=1)
        print(f"FIGURE: with miner3 stopped, 2 blocks sealed in {since(miner3_stopped):.1f} s (period {PERIOD} s)")
        assert advanced, f"head went from {first} to {head('miner1')} in {4 * PERIOD} s with two sealers"

        stop("miner2")
        stopped.append("miner2")
        at_stop = head("miner1")
        time.sleep(2 * PERIOD)  # the lone sealer may seal the one block Clique still allows it
        stalled = head("miner1")
        time.sleep(3 * PERIOD)
        after = head("miner1")
        print(f"FIGURE: with 1 of 3 sealers: head {at_stop} at the stop, {stalled} after 2 periods, {after} 3 later")
        assert stalled - at_stop <= 1
        assert after == stalled, f"a lone sealer of three sealed blocks {stalled + 1}..{after}"
        start("miner2")
        stopped.remove("miner2")
        restarted = time.monotonic()
        resumed = eventually(lambda: head("miner1") >= after + 2, timeout=12 * PERIOD, interval=1)
        print(f"FIGURE: sealing resumed (2 new blocks) {since(restarted):.1f} s after miner2 was started")
        assert resumed, f"head still {head('miner1')} {12 * PERIOD} s after miner2 was started"

        fired = eventually(
            lambda: webhook_alerts(missed, "firing", signer) > before[0], timeout=FIRE_WITHIN, interval=5
        )
        print(f"FIGURE: missed-turns alert at the webhook {since(miner3_stopped):.0f} s after miner3 stopped")
        assert fired, f"no {missed} for miner3 at the webhook within {FIRE_WITHIN} s of stopping it"
    finally:
        for miner in stopped:
            start(miner)
    started = time.monotonic()
    resolved = eventually(
        lambda: webhook_alerts(missed, "resolved", signer) > before[1], timeout=RESOLVE_WITHIN, interval=5
    )
    print(f"FIGURE: resolved at the webhook {since(started):.0f} s after miner3 started")
    assert resolved, f"{missed} for miner3 did not resolve within {RESOLVE_WITHIN} s of starting it"


# --- a Pi cut off from the network --------------------------------------------------------------------------


def test_a_pi_cut_off_whose_home_address_changed_follows_the_head_again_without_a_run(healthy):
    """pi3 drops off the network, then comes back at another address (its home router got a new one): WireGuard
    roams, the hubs answer it at the new address and its node follows the head again, with no Ansible run. Its
    lab address is given back afterwards (the later tests reach it there)."""
    pi, network = "pi3", str(lab.lab_setting("lab_network"))
    address = lab.container_address(f"hg-{pi}", network)
    moved = address.rsplit(".", 1)[0] + ".133"
    cut = False
    try:
        lab.podman("network", "disconnect", network, f"hg-{pi}")
        cut = True
        time.sleep(FAULT_SECONDS)
        views = heads(["miner1", pi])
        behind = views["miner1"].number - views[pi].number
        print(
            f"FIGURE: after {FAULT_SECONDS:.0f} s cut off, {pi} is {behind} blocks behind miner1 "
            f"with {len(views[pi].peers)} peer(s)"
        )
        assert behind >= FAULT_SECONDS // PERIOD - 2, f"{pi} kept following the chain while cut off"
    finally:
        if cut:
            lab.podman("network", "connect", "--ip", moved, network, f"hg-{pi}")
        reconnected = time.monotonic()
    try:
        target = head("miner1")

        def in_sync() -> bool:
            views = heads(["miner1", pi])
            return in_step(views) and views[pi].number >= target

        synced = eventually(in_sync, timeout=RESYNC_WITHIN, interval=1)
        print(
            f"FIGURE: {pi} back in step with miner1 (head >= {target}) {since(reconnected):.1f} s after coming back "
            f"at {moved}"
        )
        assert synced, f"{pi} not in step with miner1 {RESYNC_WITHIN} s after coming back at {moved}"
        endpoints = lab.podman_exec("hg-miner1", "wg", "show", "wg0", "endpoints").stdout
        assert f"{moved}:" in endpoints, f"miner1 does not answer {pi} at its new address:\n{endpoints}"
    finally:
        lab.podman("network", "disconnect", network, f"hg-{pi}", check=False)
        lab.podman("network", "connect", "--ip", address, network, f"hg-{pi}")
    assert lab.container_address(f"hg-{pi}", network) == address


# --- a Pi's node stopped while its agent measures on ---------------------------------------------------------


def node_down_case(contracts: Contracts) -> None:
    """pi2's node stopped for FAULT_SECONDS while its agent measures on: the kWh completed meanwhile are credited once
    the node is back, and nothing is lost or counted twice."""
    pi = "pi2"
    meter = agents.status(pi)["address"]
    capacity = contracts.meter(meter).capacity_watts
    rate = agents.wh_per_second(pi)
    assert rate > 0, f"{pi} exports nothing"
    # Stop the node shortly before the next whole kWh, so that kWh is completed while the node is down (with 15 s
    # to spare: the agent samples every 5 s).
    lead_wh = rate * max(FAULT_SECONDS - 15, FAULT_SECONDS / 2)

    def close_to_a_kwh() -> bool:
        found = agents.status(pi)
        return bool(found) and 1000 - found["exported_wh"] % 1000 <= lead_wh

    assert eventually(close_to_a_kwh, timeout=agents.seconds_per_kwh(capacity), interval=2)

    try:
        stop(pi)
        down = agents.status(pi)
        time.sleep(FAULT_SECONDS)
        during = agents.status(pi)
        credited_meanwhile = contracts.meter(meter).credited_kwh
        print(
            f"FIGURE: {pi} node down {FAULT_SECONDS:.0f} s: counter {down['exported_wh']:.0f} -> "
            f"{during['exported_wh']:.0f} Wh, {credited_meanwhile} kWh credited on chain"
        )
        assert agents.active(pi, agents.UNIT), "the agent stopped with its node"
        assert during["node"]["up"] is False
        assert during["exported_wh"] > down["exported_wh"], "the agent stopped measuring while its node was down"
        backlog = int(during["exported_wh"] // 1000)
        assert backlog > credited_meanwhile, "no whole kWh was completed while the node was down"
    finally:
        start(pi)
        restarted = time.monotonic()
    caught_up = eventually(
        lambda: contracts.meter(meter).credited_kwh >= backlog, timeout=agents.seconds_per_kwh(capacity), interval=1
    )
    print(f"FIGURE: {pi} credited up to its counter at the restart ({backlog} kWh) {since(restarted):.1f} s later")
    assert caught_up, f"{pi}: {contracts.meter(meter).credited_kwh} kWh credited, the counter had {backlog}"

    ledger = agents.settled_ledger(pi, contracts, timeout=2 * agents.seconds_per_kwh(capacity))
    assert ledger, f"{pi}: no quiet moment to compare the agent with the chain"
    after = [r.total_wh for r in ledger.reports if r.credited_kwh and r.total_wh > during["exported_wh"] - 1000]
    print(f"FIGURE: {pi} reports after the outage (total Wh): {after}, counter {ledger.counter_wh:.0f} Wh")
    assert ledger.discrepancies() == []


# --- an agent killed again and again ----------------------------------------------------------------------------


def kills_case(contracts: Contracts) -> None:
    """pi3's agent SIGKILLed KILLS times, at random moments and AIMED of them at a report in flight: no stuck nonce,
    nothing lost, nothing counted twice."""
    pi, rng = "pi3", random.Random(SEED)
    meter = agents.status(pi)["address"]
    capacity = contracts.meter(meter).capacity_watts
    restarts = int(agents.unit_properties(pi, agents.UNIT, "NRestarts")["NRestarts"])
    kills = agents.kill_repeatedly(pi, KILLS, rng, max_delay=KILL_DELAY, aimed=AIMED, period=PERIOD)
    print(
        f"FIGURE: {pi} agent SIGKILLed {KILLS} times ({AIMED} aimed at a kWh crossing), seed {SEED}, "
        f"delays after each start {[k.delay for k in kills]}"
    )
    now = int(agents.unit_properties(pi, agents.UNIT, "NRestarts")["NRestarts"])
    assert now - restarts == KILLS, f"systemd restarted the agent {now - restarts} times for {KILLS} kills"

    # No stuck nonce: a report the agent signs after the last kill is mined, and nothing waits in the node's pool.
    after = agents.after_kills(pi, contracts, kills, agents.seconds_per_kwh(capacity))
    print(f"FIGURE: {pi} first report after the kills mined {after.report_after:.0f} s after the last kill")
    print(f"FIGURE: {pi} {after.in_flight} of {KILLS} kills came while a report was signed and not yet in a block")
    assert after.report, f"{pi}: no report signed after the last kill was mined"
    assert after.ledger, f"{pi}: no quiet moment to compare the agent with the chain"
    assert after.stuck == 0, f"{pi}: {after.stuck} transaction(s) of the meter stuck in the node's pool"
    assert after.report["tx_hash"] in {r.tx_hash for r in after.ledger.reports}
    assert after.ledger.discrepancies() == []


# --- a Pi's node down and another Pi's agent killed, side by side ------------------------------------------------


def test_an_agent_catches_up_after_its_node_was_down_while_another_is_killed_again_and_again(healthy, contracts):
    """The two cases share nothing but the chain (pi2's node, pi3's agent), and each mostly waits for a kWh: pi3's kills
    run in a thread beside pi2's outage, and the test ends when both have (about 70 s less than one after the other).
    Each case has its own chain reader; a failure in either fails the test, with both cases run to the end."""
    with ThreadPoolExecutor(max_workers=1) as pool, closing(Contracts("stats1")) as reader:
        kills = pool.submit(kills_case, reader)
        try:
            node_down_case(contracts)
        finally:
            wait([kills])  # the kills run to their end even when pi2's case has failed
        kills.result()


# --- a Pi rebooted ----------------------------------------------------------------------------------------------


def test_a_rebooted_pi_starts_geth_then_its_agent_and_sells_again(healthy, contracts):
    pi = "pi2"
    meter = agents.status(pi)["address"]
    capacity = contracts.meter(meter).capacity_watts
    rebooted, rebooted_at = time.monotonic(), time.time()
    lab.podman("restart", f"hg-{pi}")
    back = eventually(lambda: agents.active(pi, "geth") and agents.active(pi, agents.UNIT), BOOT_WITHIN, 1)
    assert back, f"{pi}: geth or the agent not active {BOOT_WITHIN} s after the restart"

    geth = unit_moment(pi, "geth", "ActiveEnterTimestampMonotonic")
    agent_starting = unit_moment(pi, agents.UNIT, "InactiveExitTimestampMonotonic")
    agent_active = unit_moment(pi, agents.UNIT, "ActiveEnterTimestampMonotonic")
    print(
        f"FIGURE: {pi} restarted: geth active after {geth - rebooted:.1f} s, "
        f"agent active after {agent_active - rebooted:.1f} s"
    )
    assert geth > rebooted, "geth was not restarted with the Pi"
    assert agent_starting >= geth, "the agent started before geth was up (After=geth.service)"

    def sold_since_reboot():
        return next((r for r in contracts.reports(meter) if r.timestamp > rebooted_at), None)

    sale = eventually(sold_since_reboot, timeout=agents.seconds_per_kwh(capacity) + BOOT_WITHIN, interval=5)
    print(f"FIGURE: {pi} sold again {sale.timestamp - rebooted_at if sale else float('nan'):.0f} s after the reboot")
    assert sale, f"{pi}: no report on chain since the reboot"

    ledger = agents.settled_ledger(pi, contracts, timeout=2 * agents.seconds_per_kwh(capacity))
    assert ledger, f"{pi}: no quiet moment to compare the agent with the chain"
    assert ledger.discrepancies() == []
