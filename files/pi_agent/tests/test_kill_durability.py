"""Chain-level durability: SIGKILL the real agent process at random moments against a real Clique geth.

The agent runs as a subprocess (``python -m heliogrid_agent run``) with a simulated 3.6 MW installation
(one kWh a second) against the dev chain (geth 1.13, heliogrid_testing/devchain.py). It is killed
HELIOGRID_AGENT_KILLS times (default 6) at random moments (seed HELIOGRID_AGENT_SEED), restarted each
time, then run once more with no production until it has caught up. The chain must then hold exactly
the agent's counter: credited kWh == counter kWh, every credit once, every nonce used once.

The same for automatic purchases: an agent whose home imports half a kWh a second (heliogrid_testing.import_agent)
buys from a neighbour's offers while it is killed; then the kWh it bought on chain equal the kWh imported since its
baseline, the tokens it paid equal the purchases' costs, and every purchase is one mined transaction.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account
from heliogrid_testing.chainkit import (
    DEPLOYER_KEY,
    METER_KEY,
    TARIFF,
    artifacts_available,
    call,
    setup_market,
)

pytestmark = [pytest.mark.chain, pytest.mark.slow]

KILLS = int(os.environ.get("HELIOGRID_AGENT_KILLS", "6"))
SEED = int(os.environ.get("HELIOGRID_AGENT_SEED", str(int(time.time()))))
SELLER_KEY = "0x" + "c3" * 32  # a throwaway test key: the neighbour whose offers the agent buys


@pytest.fixture
def devchain(tmp_path):
    # The durability proof needs the real pieces: a missing artifact or geth is a failure, not a skip.
    if not artifacts_available():
        pytest.fail("contracts/build/*.json are missing: the recorded contract artifacts are part of the repository")
    from heliogrid_testing import devchain as devchain_module

    prefund = [Account.from_key(k).address for k in (DEPLOYER_KEY, METER_KEY, SELLER_KEY)]
    try:
        chain = devchain_module.DevChain(tmp_path / "devchain", prefund=prefund)
    except devchain_module.GethNotBuilt as exc:
        pytest.fail(f"geth not built: {exc}")
    with chain:
        yield chain


def write_config(tmp_path: Path, record: Path, house_watts: float) -> Path:
    keystore, password = tmp_path / "keystore.json", tmp_path / "password"
    if not keystore.exists():
        password.write_text("agent-test\n")
        password.chmod(0o600)
        keystore.write_text(json.dumps(Account.encrypt(METER_KEY, "agent-test", kdf="scrypt", iterations=2**10)))
        keystore.chmod(0o600)
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[meter]
sensor = "simulated"
interval_seconds = 0.05
[sensor.simulated]
panels = 10
panel_peak_watts = 360000
clear_sky = true
noise = 0.0
house_watts = {house_watts}
[chain]
rpc_url = "{{rpc}}"
contracts_file = "{record}"
keystore = "{keystore}"
password_file = "{password}"
poll_seconds = 0.2
resend_seconds = 2
[store]
path = "{tmp_path / "agent.db"}"
[metrics]
enabled = false
[ui]
enabled = false
[gpio]
pin_factory = "mock"
[log]
target = "stderr"
""")
    return config


def reconciled_count(log: Path) -> int:
    return log.read_text().count("event=reconciled") if log.exists() else 0


def wait_until_reconciled(log: Path, proc: subprocess.Popen, seen: int, timeout: float = 90) -> None:
    """Wait for this run's "reconciled" line: the agent has read the chain and is measuring and reporting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count("event=reconciled") > seen:
            return
        if proc.poll() is not None:
            pytest.fail(f"agent exited with {proc.returncode}: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    pytest.fail(f"agent did not reconcile within {timeout}s: {log.read_text()[-2000:]}")


def start_agent(config: Path, rpc_url: str, log: Path, command: list[str] | None = None) -> subprocess.Popen:
    text = config.read_text().replace("{rpc}", rpc_url)
    config.write_text(text)
    with log.open("ab") as out:
        return subprocess.Popen(
            command or [sys.executable, "-m", "heliogrid_agent", "-c", str(config), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def local_total_wh(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT total_uwh FROM meter_state").fetchone()[0] // 1_000_000


def test_sigkill_at_random_moments_never_loses_or_double_credits_a_kwh(tmp_path, devchain):
    from web3 import Web3
    from web3.middleware import ExtraDataToPOAMiddleware

    w3 = Web3(Web3.HTTPProvider(devchain.rpc_url))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    meter = Account.from_key(METER_KEY).address
    kit = setup_market(w3, tmp_path, meter, meter, capacity_watts=4_000_000)
    market, token = kit["market"], kit["token"]
    log = tmp_path / "agent.log"
    rng = random.Random(SEED)
    print(f"seed {SEED}, {KILLS} kills")

    config = write_config(tmp_path, kit["record"], house_watts=0)
    for _ in range(KILLS):
        seen = reconciled_count(log)
        proc = start_agent(config, devchain.rpc_url, log)
        # Kill at a random moment of its working life, not during interpreter start-up (seconds on a loaded
        # machine), so that every kill can land between the steps of a report.
        wait_until_reconciled(log, proc, seen)
        time.sleep(rng.uniform(0.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    # Last run: no more production, so the chain can catch up with a counter that no longer moves.
    (tmp_path / "agent.toml").unlink()
    config = write_config(tmp_path, kit["record"], house_watts=3_600_000)
    proc = start_agent(config, devchain.rpc_url, log)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            m = market.functions.getMeter(meter).call()
            if m[6] == local_total_wh(tmp_path / "agent.db") // 1000 and m[6] > 0:
                break
            time.sleep(0.5)
        time.sleep(2)  # a last poll to settle the outbox
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

    counter_wh = local_total_wh(tmp_path / "agent.db")
    total_wh, credited = market.functions.getMeter(meter).call()[5:7]
    print(f"counter {counter_wh} Wh, chain total {total_wh} Wh, credited {credited} kWh")
    assert credited > 0, log.read_text()[-3000:]
    assert credited == counter_wh // 1000, log.read_text()[-3000:]
    assert total_wh <= counter_wh
    events = market.events.ProductionReported().get_logs(from_block=0)
    assert sum(e["args"]["creditedKWh"] for e in events) == credited  # every kWh credited once
    assert token.functions.balanceOf(meter).call() == credited * TARIFF
    with sqlite3.connect(tmp_path / "agent.db") as conn:
        rows = conn.execute("SELECT nonce, status, tx_hash FROM outbox").fetchall()
    # every transaction the meter's account ever sent is in the outbox, and each nonce was signed once
    assert sorted(r[0] for r in rows) == list(range(w3.eth.get_transaction_count(meter)))
    mined = {r[2] for r in rows if r[1] == "mined"}
    assert {e["transactionHash"].to_0x_hex() for e in events} == mined


IMPORT_RATE = 5 * 10**8  # micro-Wh a second: the home imports half a kWh a second...
IMPORT_MAX = 45 * 10**9  # ...up to 45 kWh, less than the 48 kWh offered within the cap, however slow the machine
CAP = 4 * TARIFF // 10  # buy.max_price_per_kwh = 0.4 tokens


def offer_kwh(w3, market, key: str, offers: list[tuple[int, int]]) -> None:
    """``key``'s meter offers each (kWh, price): an ask price, then a report of that many more kWh, in its own block."""
    address = Account.from_key(key).address
    total = market.functions.getMeter(address).call()[5]
    for kwh, price in offers:
        total += kwh * 1000
        call(w3, key, market.functions.setAskPrice(price))
        call(w3, key, market.functions.reportProduction(total))  # each report in a later block: elapsed > 0


def test_sigkill_during_automatic_purchases_never_buys_or_pays_a_kwh_twice(tmp_path, devchain):
    from web3 import Web3
    from web3.middleware import ExtraDataToPOAMiddleware

    w3 = Web3(Web3.HTTPProvider(devchain.rpc_url))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    buyer, seller = Account.from_key(METER_KEY).address, Account.from_key(SELLER_KEY).address
    kit = setup_market(w3, tmp_path, buyer, buyer, capacity_watts=4_000_000)
    market, token = kit["market"], kit["token"]
    call(w3, DEPLOYER_KEY, market.functions.registerMeter(seller, seller, 4_000_000_000))
    first_offer = market.functions.nextOfferId().call()
    # within the cap: 12 kWh each at 0.3, 0.1, 0.2, 0.4 tokens; above it: 10 kWh at 0.9
    prices = [3 * TARIFF // 10, TARIFF // 10, 2 * TARIFF // 10, CAP, 9 * TARIFF // 10]
    offer_kwh(w3, market, SELLER_KEY, [(12, p) for p in prices[:4]] + [(10, prices[4])])
    call(w3, SELLER_KEY, token.functions.transfer(buyer, 40 * TARIFF))
    start_buyer, start_seller = token.functions.balanceOf(buyer).call(), token.functions.balanceOf(seller).call()

    log, state, db = tmp_path / "agent.log", tmp_path / "import", tmp_path / "agent.db"
    config = write_config(tmp_path, kit["record"], house_watts=3_600_000)  # produces nothing: only buys
    config.write_text(config.read_text() + '\n[buy]\nmax_price_per_kwh = "0.4"\nauto = true\ndaily_budget = "1000"\n')
    command = [
        sys.executable, "-m", "heliogrid_testing.import_agent", str(config), str(state), str(IMPORT_RATE),
        str(IMPORT_MAX),
    ]  # fmt: skip
    rng = random.Random(SEED)
    print(f"seed {SEED}, {KILLS} kills")
    in_flight = 0
    for _ in range(KILLS):
        seen = reconciled_count(log)
        proc = start_agent(config, devchain.rpc_url, log, command)
        wait_until_reconciled(log, proc, seen)
        time.sleep(rng.uniform(0.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with sqlite3.connect(db) as conn:
            in_flight += conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE kind IN ('buy', 'approve') AND status IN ('signed', 'sent')"
            ).fetchone()[0]

    # The import stops where it is (the agent is dead, so it saw no more than this); the last run catches up.
    t0 = float((state / "t0").read_text())
    frozen = min(int((time.time() - t0) * IMPORT_RATE), IMPORT_MAX)
    (state / "frozen").write_text(str(frozen))
    proc = start_agent(config, devchain.rpc_url, log, command)
    try:
        wait_until_reconciled(log, proc, reconciled_count(log))
        with sqlite3.connect(db) as conn:
            baseline = int(conn.execute("SELECT value FROM kv WHERE key = 'auto_buy_baseline_kwh'").fetchone()[0])
        due = frozen // 10**9 - baseline
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and market.functions.purchasedKWh(buyer).call() < due:
            time.sleep(0.5)
        time.sleep(4)  # a few more steps: anything bought beyond what is due would show now
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

    purchased = market.functions.purchasedKWh(buyer).call()
    events = market.events.EnergyPurchased().get_logs(from_block=0)
    print(
        f"imported {frozen / 10**9:.3f} kWh, baseline {baseline} kWh, bought {purchased} kWh in {len(events)} "
        f"purchases from offers {[e['args']['offerId'] for e in events]}; {in_flight} kill(s) left a purchase in flight"
    )
    assert due > 0
    assert purchased == due, log.read_text()[-3000:]  # every imported kWh bought, none twice
    assert sum(e["args"]["kWh"] for e in events) == purchased
    paid = sum(e["args"]["cost"] for e in events)
    assert token.functions.balanceOf(buyer).call() == start_buyer - paid  # paid once, for what was bought
    assert token.functions.balanceOf(seller).call() == start_seller + paid
    assert all(e["args"]["cost"] <= e["args"]["kWh"] * CAP for e in events)
    above_cap = first_offer + 4
    assert market.functions.getOffer(above_cap).call()[2] == 10  # never bought above the cap
    # cheapest first: the offers were emptied in price order
    bought_from = [e["args"]["offerId"] for e in events]
    order = sorted(range(first_offer, first_offer + 4), key=lambda i: prices[i - first_offer])
    assert bought_from == sorted(bought_from, key=order.index)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT nonce, status, tx_hash, kind, detail FROM outbox").fetchall()
    # every transaction of the buyer's account is in the outbox, each nonce signed once
    assert sorted(r[0] for r in rows) == list(range(w3.eth.get_transaction_count(buyer)))
    mined_buys = {r[2] for r in rows if r[1] == "mined" and r[3] == "buy"}
    assert {e["transactionHash"].to_0x_hex() for e in events} == mined_buys
    # approve only as much as needed: each approval is followed by the buy that spends it
    assert sum(r[3] == "approve" for r in rows) <= len(mined_buys) + 1
    # the agent's own ledger (what the page shows) is the chain's
    auto = [json.loads(r[4]) for r in rows if r[1] == "mined" and r[3] == "buy"]
    assert sum(d["kwh"] for d in auto) == purchased
    assert sum(int(d["cost"]) for d in auto) == paid
