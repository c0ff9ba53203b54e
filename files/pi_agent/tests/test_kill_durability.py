"""Chain-level durability: SIGKILL the real agent process at random moments against a real Clique geth.

The agent runs as a subprocess (``python -m heliogrid_agent run``) with a simulated 3.6 MW installation
(one kWh a second) against the dev chain (geth 1.13, heliogrid_testing/devchain.py). It is killed
HELIOGRID_AGENT_KILLS times (default 6) at random moments (seed HELIOGRID_AGENT_SEED), restarted each
time, then run once more with no production until it has caught up. The chain must then hold exactly
the agent's counter: credited kWh == counter kWh, every credit once, every nonce used once.
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
from heliogrid_testing.chainkit import DEPLOYER_KEY, METER_KEY, TARIFF, artifacts_available, setup_market

pytestmark = [pytest.mark.chain, pytest.mark.slow]

KILLS = int(os.environ.get("HELIOGRID_AGENT_KILLS", "6"))
SEED = int(os.environ.get("HELIOGRID_AGENT_SEED", str(int(time.time()))))


@pytest.fixture
def devchain(tmp_path):
    # The durability proof needs the real pieces: a missing artifact or geth is a failure, not a skip.
    if not artifacts_available():
        pytest.fail("contracts/build/*.json are missing: the recorded contract artifacts are part of the repository")
    from heliogrid_testing import devchain as devchain_module

    prefund = [Account.from_key(k).address for k in (DEPLOYER_KEY, METER_KEY)]
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


def start_agent(config: Path, rpc_url: str, log: Path) -> subprocess.Popen:
    text = config.read_text().replace("{rpc}", rpc_url)
    config.write_text(text)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "heliogrid_agent", "-c", str(config), "run"], stdout=out, stderr=subprocess.STDOUT
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
