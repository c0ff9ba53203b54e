"""The Pis' metering agents as the system tests see them, and the check that their account matches the chain's.

An agent's own account comes from inside its Pi: its status (GET /api/status on the Pi's LAN address, fetched
by a python3 in the Pi's container, so this machine opens no connection to a lab address) and its outbox
(the SQLite database, opened read-only as the agent's user so nothing in its state directory changes owner).
Semantics: files/pi_agent/src/heliogrid_agent/{agent,reporter,store}.py.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from tests.support import lab
from tests.support.chain import Contracts, Meter, Report, eventually

UI_PORT = 8080  # roles/pi_agent pi_agent_ui_port
DB = "/var/lib/heliogrid-agent/agent.db"  # roles/pi_agent pi_agent_state_dir + agent.db
USER = "heliogrid-agent"  # roles/pi_agent pi_agent_user
UNIT = "heliogrid-agent"
UNRESOLVED = ("signed", "sent")  # outbox rows whose fate the agent does not know yet
STARTED = "39f53479d3a045ac8e11786248231fbf"  # systemd's MESSAGE_ID of "Started <unit>"

STATUS_SCRIPT = """
import subprocess, sys, urllib.request
address = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True).stdout.split()[0]
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
    try:
        result = lab.podman_exec(f"hg-{pi}", "python3", "-c", STATUS_SCRIPT, str(UI_PORT), check=False, timeout=60)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else None


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
    """Wall-clock time systemd first reported the agent's unit started, from the Pi's journal (None if lost)."""
    journal = lab.podman_exec(
        f"hg-{pi}", "journalctl", "--unit", f"{UNIT}.service", "--output", "json", "--no-pager", check=False
    ).stdout
    for line in journal.splitlines():
        entry = json.loads(line)
        if entry.get("MESSAGE_ID") == STARTED:
            return int(entry["__REALTIME_TIMESTAMP"]) / 1e6
    return None


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


def settled_ledger(pi: str, contracts: Contracts, timeout: float, margin_wh: float = 120) -> Ledger | None:
    """The Pi's ledger at a moment when the agent has no transaction in flight and its counter is at least
    `margin_wh` past a whole kWh (so the report of that kWh has had time to be mined); None if no such moment
    came within `timeout`. At 20 kW, 120 Wh is 22 s; on the lab (amd64 and emulated arm64 Pis alike) an agent
    signed its report at most 25 Wh past the kWh and the report was in a block 5 s later.

    The chain is read between two looks at the agent; a moment where the agent changed in between (a new
    transaction, a kWh crossed) is discarded and the next one tried.
    """

    def look() -> Ledger | None:
        before = status(pi)
        if not before or not before["node"]["up"] or before.get("problem") or before["exported_wh"] % 1000 < margin_wh:
            return None
        transactions = outbox(pi)
        if transactions is None or any(t["status"] in UNRESOLVED for t in transactions):
            return None
        mined = [t["block_number"] for t in transactions if t["status"] == "mined" and t["block_number"]]
        block = contracts.block_number()
        if mined and block < max(mined):  # the RPC node has not imported the agent's latest block yet
            return None
        meter = before["address"]
        chain, reports, tariff = contracts.meter(meter, block), contracts.reports(meter, block), contracts.tariff(block)
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


def wh_per_second(pi: str) -> float:
    """The agent's current export in Wh per second (its last sample's power)."""
    found = status(pi)
    return (found["power_watts"] if found else 0.0) / 3600
