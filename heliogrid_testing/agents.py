"""The Pis' metering agents as the system tests see them, and the check that their account matches the chain's.

An agent's own account comes from inside its Pi: its status (GET /api/status on the Pi's LAN address, fetched
from inside the Pi's network namespace, so this machine opens no connection to a lab address) and its outbox
(the SQLite database, opened read-only as the agent's user so nothing in its state directory changes owner).
Semantics: files/pi_agent/src/heliogrid_agent/{agent,reporter,store}.py.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from heliogrid_testing.chain import Contracts, Meter, Report, eventually, in_network_of, rpc
from lab import lab

UI_PORT = 8080  # roles/pi_agent pi_agent_ui_port
DB = "/var/lib/heliogrid-agent/agent.db"  # roles/pi_agent pi_agent_state_dir + agent.db
USER = "heliogrid-agent"  # roles/pi_agent pi_agent_user
UNIT = "heliogrid-agent"
UNRESOLVED = ("signed", "sent")  # outbox rows whose fate the agent does not know yet
STARTED = "39f53479d3a045ac8e11786248231fbf"  # systemd's MESSAGE_ID of "Started <unit>"

STATUS_SCRIPT = """
import socket, sys, urllib.request
# The page listens on the address of the default route's interface (the LAN), not on the overlay's (wg0).
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the source address
address = probe.getsockname()[0]
with urllib.request.urlopen(f"http://{address}:{sys.argv[1]}/api/status", timeout=15) as answer:
    sys.stdout.write(answer.read().decode())
"""

OUTBOX_SCRIPT = """
import json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
columns = ["id", "kind", "nonce", "tx_hash", "total_wh", "status", "created_at", "sent_at", "block_number", "error"]
rows = db.execute(f"SELECT {', '.join(columns)} FROM outbox ORDER BY id").fetchall()
print(json.dumps([dict(zip(columns, row)) for row in rows]))
"""


def status(pi: str) -> dict[str, Any] | None:
    """The agent's GET /api/status, or None while it does not answer (stopped, restarting, Pi unreachable)."""
    result = in_network_of(pi, sys.executable, "-I", "-c", STATUS_SCRIPT, str(UI_PORT), timeout=60)
    return json.loads(result.stdout) if result and result.returncode == 0 and result.stdout.strip() else None


def outbox(pi: str) -> list[dict[str, Any]] | None:
    """Every transaction the agent ever signed (its outbox), oldest first; None if the database cannot be read."""
    try:
        result = lab.podman_exec(f"hg-{pi}", "python3", "-c", OUTBOX_SCRIPT, DB, user=USER, check=False, timeout=60)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(result.stdout) if result.returncode == 0 else None


def unit_properties(host: str, unit: str, *names: str) -> dict[str, str]:
    shown = lab.podman_exec(f"hg-{host}", "systemctl", "show", unit, *(f"--property={n}" for n in names)).stdout
    return dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)


def active(host: str, unit: str) -> bool:
    return lab.podman_exec(f"hg-{host}", "systemctl", "is-active", unit, check=False).stdout.strip() == "active"


def first_start(pi: str) -> float | None:
    """When the Pi's agent first started (wall clock), or None if nothing on the Pi tells any more.

    The earliest of: systemd's first "Started" entry for the unit in the Pi's journal, and the birth time of the
    database the agent creates on its first run (measured on the lab: within 2 s of that entry). The second
    survives where the first does not: a lab container keeps no journal across `podman restart`.
    """
    found = []
    journal = lab.podman_exec(
        f"hg-{pi}", "journalctl", "--unit", f"{UNIT}.service", "--output", "json", "--no-pager", check=False
    ).stdout
    for line in journal.splitlines():
        entry = json.loads(line)
        if entry.get("MESSAGE_ID") == STARTED:
            found.append(int(entry["__REALTIME_TIMESTAMP"]) / 1e6)
            break
    born = lab.podman_exec(f"hg-{pi}", "stat", "--format", "%W", DB, check=False).stdout.strip()
    if born.isdigit() and int(born) > 0:  # 0: the file system does not record birth times
        found.append(float(born))
    return min(found, default=None)


@dataclass
class Ledger:
    """One Pi's meter at one moment: the agent's own account and the chain's, read while no report was in flight."""

    pi: str
    meter: str
    counter_wh: float  # the agent's energy counter (exported_wh)
    agent_sold_kwh: int  # what the agent reads on chain (sold_kwh)
    agent_onchain_wh: int  # ... and onchain_total_wh
    transactions: list[dict[str, Any]]  # the agent's outbox
    block: int  # the block the chain was read at
    chain: Meter  # getMeter(meter) at that block
    reports: list[Report]  # ProductionReported events of the meter up to that block
    tariff: int
    seen_at: float = field(default_factory=time.time)

    @property
    def confirmed(self) -> list[dict[str, Any]]:
        """The agent's reports it saw mined, in chain order."""
        mined = [t for t in self.transactions if t["kind"] == "report" and t["status"] == "mined"]
        return sorted(mined, key=lambda t: (t["block_number"], t["nonce"]))

    @property
    def last_confirmed_wh(self) -> int:
        return max((t["total_wh"] for t in self.confirmed), default=0)

    def discrepancies(self) -> list[str]:
        """Every way in which the chain and the agent disagree (empty when they agree)."""
        found = []
        chain, counter_kwh = self.chain, int(self.counter_wh // 1000)
        if chain.total_wh != self.last_confirmed_wh:
            found.append(
                f"on-chain totalWh {chain.total_wh} != total of the agent's last confirmed report "
                f"{self.last_confirmed_wh} Wh"
            )
        if chain.credited_kwh != chain.total_wh // 1000:
            found.append(f"credited {chain.credited_kwh} kWh for a total of {chain.total_wh} Wh")
        if chain.credited_kwh != counter_kwh:
            found.append(
                f"credited {chain.credited_kwh} kWh on chain, but the agent's counter is {self.counter_wh:.1f} Wh "
                f"({counter_kwh} whole kWh)"
            )
        if (self.agent_sold_kwh, self.agent_onchain_wh) != (chain.credited_kwh, chain.total_wh):
            found.append(
                f"the agent shows {self.agent_sold_kwh} kWh sold / {self.agent_onchain_wh} Wh on chain; "
                f"the chain says {chain.credited_kwh} kWh / {chain.total_wh} Wh"
            )
        on_chain = [(r.tx_hash, r.total_wh) for r in self.reports]
        confirmed = [(t["tx_hash"], t["total_wh"]) for t in self.confirmed]
        if on_chain != confirmed:
            found.append(f"reports on chain {on_chain} != the agent's confirmed reports {confirmed}")
        previous = 0
        for r in self.reports:
            if r.total_wh <= previous or r.credited_kwh != r.total_wh // 1000 - previous // 1000:
                found.append(f"report in block {r.block}: total {r.total_wh} Wh after {previous} Wh credited {r}")
            if r.tokens_minted != r.credited_kwh * self.tariff:
                found.append(f"report in block {r.block} minted {r.tokens_minted} for {r.credited_kwh} kWh")
            previous = r.total_wh
        if sum(r.credited_kwh for r in self.reports) != chain.credited_kwh:
            found.append(
                f"reports credit {sum(r.credited_kwh for r in self.reports)} kWh in all, "
                f"the meter {chain.credited_kwh} kWh"
            )
        nonces = [t["nonce"] for t in self.transactions]
        if len(nonces) != len(set(nonces)):
            repeated = sorted({n for n in nonces if nonces.count(n) > 1})
            found.append(f"nonces signed more than once: {repeated}")
        return found


def settled_ledger(pi: str, contracts: Contracts, timeout: float, margin_seconds: float = 15) -> Ledger | None:
    """The Pi's ledger at a moment when the agent has no transaction in flight and its counter is at least
    `margin_seconds` of its current export past a whole kWh (so the report of that kWh has had time to be mined);
    None if no such moment came within `timeout`. On the lab (amd64 and emulated arm64 Pis alike) an agent signed
    its report at most 5 s after the kWh and the report was in a block 5 s later. Give `timeout` two kWh of export:
    the quiet moments are the second half of each kWh at the lab's 120 kW.

    A kWh the market's capacity rule still holds back (allowed_since) is not owed yet, so such a moment is not quiet
    either: after an outage the catch-up report can be capped below the counter, and the kWh after it follows once
    the rule allows it.

    The chain is read between two looks at the agent; a moment where the agent changed in between (a new
    transaction, a kWh crossed) is discarded and the next one tried.
    """

    def look() -> Ledger | None:
        before = status(pi)
        if not before or not before["node"]["up"] or before.get("problem"):
            return None
        if before["exported_wh"] % 1000 < max(120.0, before["power_watts"] * margin_seconds / 3600):
            return None
        transactions = outbox(pi)
        if transactions is None or any(t["status"] in UNRESOLVED for t in transactions):
            return None
        mined = [t["block_number"] for t in transactions if t["status"] == "mined" and t["block_number"]]
        block = contracts.block_number()
        if mined and block < max(mined):  # the RPC node has not imported the agent's latest block yet
            return None
        meter = before["address"]
        chain = contracts.meter(meter, block)
        owed = before["exported_wh"] // 1000 > chain.credited_kwh
        if owed and not allowed_since(contracts, chain, block, margin_seconds):
            return None  # the market's capacity rule holds the next kWh back (after a capped report): not yet owed
        reports, tariff = contracts.reports(meter, block), contracts.tariff(block)
        after = status(pi)
        if after is None or outbox(pi) != transactions or after["exported_wh"] // 1000 != before["exported_wh"] // 1000:
            return None
        return Ledger(
            pi,
            meter,
            after["exported_wh"],
            after["sold_kwh"],
            after["onchain_total_wh"],
            transactions,
            block,
            chain,
            reports,
            tariff,
        )

    return eventually(look, timeout, interval=3)


def allowed_since(contracts: Contracts, chain: Meter, block: int, seconds: float) -> bool:
    """Whether the market's capacity rule already allowed the meter's next whole kWh `seconds` before `block`.

    The contract takes an increase of at most capacity x elapsed block time (since the last report, capped at its
    report window) plus its tolerance. A report capped by that rule (after an outage, or signed against a node whose
    head was still old) leaves the rest of the counter to later reports, which the rule lets through at capacity
    x tolerance faster than the meter counts: the next kWh is owed only once the rule allows it.
    """
    since = chain.last_report_at or chain.registered_at
    elapsed = min(max(contracts.timestamp(block) - seconds - since, 0), contracts.max_report_seconds(block))
    allowed_wh = chain.capacity_watts * int(elapsed) * (100 + contracts.tolerance_percent(block)) // 360_000
    return chain.total_wh + allowed_wh >= (chain.credited_kwh + 1) * 1000


def seconds_per_kwh(capacity_watts: int) -> float:
    """An upper bound for a lab Pi to export one kWh: at three quarters of its capacity (it makes ~99%)."""
    return 1000 / (0.75 * capacity_watts) * 3600


def wh_per_second(pi: str) -> float:
    """The agent's current export in Wh per second (its last sample's power)."""
    found = status(pi)
    return (found["power_watts"] if found else 0.0) / 3600


@dataclass(frozen=True)
class Kill:
    """One SIGKILL of an agent: when (wall clock), how long after the agent's (re)start, and whether it was aimed
    at a kWh crossing (the moment the agent signs and sends a report) or came at a random moment."""

    at: float
    delay: float
    aimed: bool
    restarted_after: float  # s until systemd had a new main process


def kill_repeatedly(pi: str, kills: int, rng: random.Random, max_delay: float, aimed: int, period: float) -> list[Kill]:
    """SIGKILL the Pi's agent `kills` times and wait after each for systemd to restart it.

    Most kills come at a random moment within `max_delay` s after the agent's (re)start: the start-up path (replaying
    the outbox, re-reading the nonce, catching up) is where a restart can go wrong. `aimed` of them, spread evenly,
    wait instead for the agent's next kWh crossing and come within a second of its report showing as signed or sent
    on the agent's page (or four block periods after the crossing if none shows). Each waits up to one kWh of export.
    """
    every = kills // aimed if aimed else 0
    found: list[Kill] = []
    started = time.monotonic()  # the running agent has been up for a while: the first delay counts from now
    for n in range(kills):
        aim = bool(every) and n % every == every - 1 and sum(k.aimed for k in found) < aimed
        if aim:
            # Just restarted, the agent answers once its page is up and shows power after its first sample.
            now = eventually(lambda: (seen := status(pi)) and seen["power_watts"] and seen, timeout=60, interval=1)
            if not now:
                raise AssertionError(f"{pi}: the agent does not answer or exports nothing; cannot aim at a crossing")
            to_crossing = (1000 - now["exported_wh"] % 1000) / (now["power_watts"] / 3600)
            time.sleep(max(to_crossing - 3, 0))
            # Then watch for the report: the kill comes once it is signed or sent, before it is in a block.
            deadline = time.monotonic() + 3 + 4 * period
            while time.monotonic() < deadline and not report_in_flight(pi):
                time.sleep(0.2)
            time.sleep(rng.uniform(0, 1))
        else:
            time.sleep(max(started + rng.uniform(0, max_delay) - time.monotonic(), 0))
        pid = unit_properties(pi, UNIT, "MainPID")["MainPID"]
        lab.podman_exec(f"hg-{pi}", "systemctl", "kill", "-s", "KILL", UNIT)
        killed_at, killed = time.time(), time.monotonic()

        def restarted(pid=pid) -> bool:
            return unit_properties(pi, UNIT, "MainPID")["MainPID"] not in ("0", pid)

        if not eventually(restarted, timeout=60, interval=0.2):
            raise AssertionError(f"{pi}: systemd did not restart the agent after kill {n + 1}")
        found.append(Kill(killed_at, round(killed - started, 1), aim, round(time.monotonic() - killed, 1)))
        started = time.monotonic()
    return found


def report_in_flight(pi: str) -> bool:
    """Whether the agent's page shows a report it signed and does not yet know to be mined."""
    found = status(pi)
    return bool(found) and any(t["kind"] == "report" and t["status"] in UNRESOLVED for t in found["transactions"])


def reports_in_flight(kills: list[Kill], transactions: list[dict[str, Any]], mined_at: dict[int, int]) -> int:
    """How many kills came while a report was in flight: signed (in the outbox) and not yet in a block.

    `mined_at` maps block numbers to their timestamps; a report never mined counts as in flight to the end.
    """
    spans = [
        (t["created_at"], mined_at.get(t["block_number"], float("inf")) if t["block_number"] else float("inf"))
        for t in transactions
        if t["kind"] == "report"
    ]
    return sum(any(signed <= k.at < mined for signed, mined in spans) for k in kills)


@dataclass
class AfterKills:
    """What a Pi's agent and the chain show once the kills are over (see kill_repeatedly)."""

    report: dict[str, Any] | None  # the first report signed after the last kill, once mined (None: none came)
    report_after: float  # s from the last kill until that report was seen mined
    ledger: Ledger | None  # the agent and the chain at a quiet moment after it (None: no quiet moment came)
    stuck: int | None  # the meter's transactions waiting in the node's pool at that moment
    in_flight: int  # kills that came while a report was signed and not yet in a block


def after_kills(pi: str, contracts: Contracts, kills: list[Kill], seconds_per_kwh: float) -> AfterKills:
    """Wait for the agent to sign and get mined a report after the last kill, then read its ledger at a quiet
    moment: no stuck nonce means that report is mined; nothing lost or counted twice means no discrepancies."""
    last_kill = kills[-1].at

    def report_after_the_kills() -> dict[str, Any] | None:
        signed_after = [t for t in outbox(pi) or [] if t["kind"] == "report" and t["created_at"] > last_kill]
        return next((t for t in signed_after if t["status"] == "mined"), None)

    report = eventually(report_after_the_kills, timeout=seconds_per_kwh + 60, interval=5)
    report_after = time.time() - last_kill
    ledger = settled_ledger(pi, contracts, timeout=2 * seconds_per_kwh) if report else None
    if ledger is None:
        return AfterKills(report, report_after, None, None, 0)
    pending, mined = (int(rpc(pi, "eth_getTransactionCount", ledger.meter, at), 16) for at in ("pending", "latest"))
    stuck = pending - mined
    blocks = {t["block_number"] for t in ledger.transactions if t["block_number"]}
    in_flight = reports_in_flight(kills, ledger.transactions, {b: contracts.timestamp(b) for b in blocks})
    return AfterKills(report, report_after, ledger, stuck, in_flight)
