#!/usr/bin/env python3
"""site.yml on the lab: idempotent re-run time, its growth with the number of Pis, and a new Pi joining (lab).

1. `ansible-playbook site.yml` on the lab as it is (3 Pis): wall time and changed tasks (expected 0).
2. A new Pi: an amd64 Pi stand-in (pi4) is started with lab/lab.py (the stand-in for flashing and first boot;
   timed apart), given an inventory line in a second inventory source (as tests/system/test_network.py adds
   a host that hosts.yml does not list), and joined with `site.yml --limit pi4`. Then, from the start of that
   run: when its geth has a miner peer and the miners' head, and when its agent has its first sale confirmed
   on chain (`sold_kwh` >= 1 in the agent's /api/status, fetched inside the container from its own LAN
   address with `podman exec`). A lab Pi produces 60 kW, so a kWh takes about a minute of that.
3. Growth: the other --extra Pis (pi5...) are started and joined in one `site.yml --limit` run (the same
   figures per Pi), then `site.yml` is re-run over all of them: its time against step 1's gives the growth
   from 3 Pis to 3 + --extra.
Every container this script starts is removed at the end (podman rm -f hg-<name>), also on failure; their
meters stay registered on the lab chain (registrations are permanent by design).

    python bench/site_lab.py                # 3 -> 10 Pis
    python bench/site_lab.py --extra 1      # the re-run and one new Pi only
    python bench/site_lab.py --extra 0      # the re-run only
    python bench/site_lab.py --extra 1 --no-rerun    # one new Pi only

Writes two sections of the results file: site_rerun and new_pi. Needs the lab up with site.yml applied.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from heliogrid_testing.chain import attach
from heliogrid_testing.lab_state import lab_problem, run_in
from heliogrid_testing.results import Run
from lab import lab

FIRST_EXTRA = 4  # pi4, pi5, ... (hosts.yml has pi1..pi3)
ADDRESS_BASE = 30  # piN at <lab subnet>.(30 + N), next to hosts.yml's Pis (.31 to .33)
IMAGES = ("trixie-amd64", "bookworm-amd64")  # amd64 stand-ins, alternating like pi2/pi3
STATUS_SCRIPT = (
    "import sys, urllib.request; "
    "print(urllib.request.urlopen(f'http://{sys.argv[1]}:8080/api/status', timeout=10).read().decode())"
)

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Joined:
    name: str
    address: str
    image: str
    started: float  # start of its site.yml --limit run (monotonic)
    synced_after: float | None = None
    sale_after: float | None = None
    sale_detail: str = ""


@dataclass
class Timed:
    label: str
    pis: int
    seconds: float
    returncode: int
    changed: int
    changed_hosts: dict[str, int] = field(default_factory=dict)
    log: Path | None = None


def playbook(label: str, pis: int, args: list[str], logdir: Path) -> Timed:
    log = logdir / f"{label.replace(' ', '-').replace('/', '_')}.log"
    print(f"site: {label}: ansible-playbook site.yml {' '.join(args)}", flush=True)
    t = time.monotonic()
    result = lab.playbook("site.yml", *args, log=log)
    seconds = time.monotonic() - t
    changed = {h: r["changed"] for h, r in result.recap.items() if r["changed"]}
    timed = Timed(label, pis, seconds, result.returncode, sum(changed.values()), changed, log)
    print(
        f"site: {label}: {seconds:.0f} s, rc {result.returncode}, changed {timed.changed} {changed or ''} (log {log})",
        flush=True,
    )
    if result.returncode != 0:
        print(result.output[-3000:])
    return timed


def write_inventory(path: Path, pis: list[tuple[str, str, str]]) -> None:
    """The second inventory source: the extra Pis, with what group_vars derive from inventory_dir given here."""
    ssh = ROOT / ".lab" / "ssh"
    state = ROOT / "inventories" / "lab" / "state"
    # The lab's addressing plan (hosts.yml): the overlay address has the lab address's host number.
    overlay = yaml.safe_load((ROOT / "inventories" / "lab" / "group_vars" / "all" / "overlay.yml").read_text())
    overlay_base = ipaddress.ip_network(overlay["overlay_subnet"]).network_address
    hosts = {
        name: {
            "lab_address": address,
            "overlay_address": str(overlay_base + int(address.rsplit(".", 1)[1])),
            "lab_image": image,
            "heliogrid_state_dir": str(state),
            "ansible_ssh_private_key_file": str(ssh / "id_ed25519"),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={ssh / 'known_hosts'} -o StrictHostKeyChecking=yes",
        }
        for name, address, image in pis
    }
    path.write_text(json.dumps({"all": {"children": {"pis": {"hosts": hosts}}}}, indent=2))


def start_containers(pis: list[tuple[str, str, str]], started: list[str]) -> float:
    """Start lab containers for hosts hosts.yml does not list (lab/lab.py up, as tests/system does)."""
    extra = [lab.LabHost(name, address, image, ("pis",)) for name, address, image in pis]
    started.extend(f"hg-{name}" for name, _, _ in pis)  # before up(): a half-made container is removed too
    t = time.monotonic()
    lab.up([name for name, _, _ in pis], extra=extra)
    return time.monotonic() - t


def remove_containers(started: list[str]) -> None:
    for container in started:
        lab.podman("rm", "-f", "-t", "5", container, check=False)
        # The fact cache of a host that is gone (ansible-core 2.19 names the files s<schema>_<host>).
        name = container.removeprefix("hg-")
        for cached in [ROOT / ".cache" / "facts" / name, *(ROOT / ".cache" / "facts").glob(f"s[0-9]*_{name}")]:
            cached.unlink(missing_ok=True)
        print(f"site: removed {container}")


def agent_status(pi: Joined) -> dict | None:
    result = run_in(pi.name, "python3", "-c", STATUS_SCRIPT, pi.address, timeout=60)
    if result.returncode != 0:
        return None
    try:
        return json.loads(result.stdout)
    except ValueError:
        return None


def follow(pis: list[Joined], timeout: float) -> None:
    """Poll until every Pi is synced and has sold (or timeout): sync via geth IPC, sale via the agent's page."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(p.sale_after is None or p.synced_after is None for p in pis):
        miner_head = attach("miner1", "eth.blockNumber", check=False, timeout=60) or 0
        gone = [p.name for p in pis if not lab.running(f"hg-{p.name}")]
        if gone:
            raise Interrupted(f"containers {', '.join('hg-' + n for n in gone)} are gone (lab torn down?)")
        for p in pis:
            now = time.monotonic()
            if p.synced_after is None:
                state = (
                    attach(p.name, "{head: eth.blockNumber, peers: admin.peers.length}", check=False, timeout=60) or {}
                )
                if miner_head > 0 and state.get("peers", 0) >= 1 and state.get("head", 0) >= miner_head - 1:
                    p.synced_after = now - p.started
                    print(f"site: {p.name} synced (head {state['head']}) {p.synced_after:.0f} s after its run began")
            if p.sale_after is None:
                status = agent_status(p) or {}
                if (status.get("sold_kwh") or 0) >= 1:
                    p.sale_after = now - p.started
                    mined = [t for t in status.get("transactions", []) if t.get("status") == "mined"]
                    p.sale_detail = f"{status['sold_kwh']} kWh credited" + (
                        f", report in block {mined[-1]['block']}" if mined else ""
                    )
                    print(f"site: {p.name} first sale {p.sale_after:.0f} s after its run began ({p.sale_detail})")
        time.sleep(10)


@dataclass
class Join:
    run: Timed
    joined: list[Joined]
    boot_seconds: float


Pi = tuple[str, str, str]  # name, address, image


def join(pis: list[Pi], all_pis: list[Pi], started: list[str], logdir: Path) -> Join:
    """Start the containers, write the inventory lines (all extra Pis so far), run site.yml --limit for them."""
    boot = start_containers(pis, started)
    inventory = logdir / "extra-pis.json"
    write_inventory(inventory, all_pis)
    names = ",".join(name for name, _, _ in pis)
    sources = ["-i", str(ROOT / "inventories" / "lab"), "-i", str(inventory)]
    t0 = time.monotonic()
    run = playbook(
        f"join {names}", len(lab.inventory_hosts("pis")) + len(all_pis), [*sources, "--limit", names], logdir
    )
    return Join(run, [Joined(name, address, image, t0) for name, address, image in pis], boot)


def exists(name: str) -> bool:
    return lab.exists("container", f"hg-{name}")


def spread(values: list[float], n: int, ran: bool) -> str:
    """min / median / max (or the one value), and how many of n got there."""
    if not values:
        return "not within the timeout" if ran else "-"
    if len(values) == 1:
        text = f"{values[0]:.0f}"
    else:
        text = f"{min(values):.0f} / {statistics.median(values):.0f} / {max(values):.0f}"
    return text + (f" ({len(values)} of {n})" if len(values) < n else "")


class Interrupted(Exception):
    """The run was stopped from outside (a signal, the lab torn down); what was measured is still written."""


def on_signal(signum: int, _frame: object) -> None:
    raise Interrupted(f"stopped by {signal.Signals(signum).name}")


def rerun_lines(runs: list[Timed], extras: int, logdir: Path, note: str | None) -> list[str]:
    lines = [f"> {note}", ""] if note else []
    lines += [
        "`ansible-playbook site.yml` (the venv's, with the repository's ansible.cfg: forks 10, SSH pipelining, "
        "fact cache) on the lab with `site.yml` already applied; extra Pis are amd64 stand-ins in a second "
        f"inventory source. Logs of this run: `{logdir}` (kept on the machine that ran it).",
        "",
        "| run | Pis | wall time (s) | changed tasks | result |",
        "|---|---|---|---|---|",
    ]
    for r in runs:
        result = "ok" if r.returncode == 0 else f"**failed** (rc {r.returncode})"
        where = f" ({', '.join(f'{h}: {c}' for h, c in r.changed_hosts.items())})" if r.changed_hosts else ""
        lines.append(f"| {r.label} | {r.pis} | {r.seconds:.0f} | {r.changed}{where} | {result} |")
    if len(runs) == 2 and all(r.returncode == 0 for r in runs):
        a, b = runs
        per_pi = (b.seconds - a.seconds) / (b.pis - a.pis)
        lines += ["", f"Growth: {a.pis} → {b.pis} Pis adds {b.seconds - a.seconds:.0f} s ({per_pi:+.0f} s per Pi)."]
    elif not extras:
        lines += ["", "Growth not measured in this run (`--extra 0`)."]
    return lines


def newpi_lines(joins: list[Join], note: str | None) -> list[str]:
    body = [f"> {note}", ""] if note else []
    body += [
        "A Pi stand-in is started (*host up*: lab/lab.py, in place of flashing and first boot), its inventory "
        "line written, and `site.yml --limit` run for it. Times are from the start of that run: *synced* = its "
        "geth has a peer and the miners' head; *first sale* = its agent's `/api/status` (fetched inside the "
        "container) shows a kWh credited on chain; both polled about every 10 s. The lab's simulated "
        "installation needs about 1 min per kWh.",
        "",
        "| Pis joining in one run | host up (s) | `site.yml --limit` (s) | changed | synced (s) | first sale (s) "
        "| Pi: first sale (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for j in joins:
        ran = j.run.returncode == 0
        synced = [p.synced_after for p in j.joined if p.synced_after is not None]
        sold = [p.sale_after for p in j.joined if p.sale_after is not None]
        per_pi = ", ".join(
            f"{p.name} ({p.image.split('-')[0]}) {p.sale_after:.0f}" if p.sale_after else f"{p.name} -"
            for p in j.joined
        )
        result = "" if ran else f" **failed** (rc {j.run.returncode})"
        body.append(
            f"| {len(j.joined)} | {j.boot_seconds:.0f} | {j.run.seconds:.0f}{result} | {j.run.changed} "
            f"| {spread(synced, len(j.joined), ran)} | {spread(sold, len(j.joined), ran)} | {per_pi} |"
        )
    body += ["", "Several values: min / median / max over the Pis of that run."]
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extra", type=int, default=7, help="Pis to add to the lab's 3 (0..16); the first joins alone")
    parser.add_argument("--sale-timeout", type=float, default=1200, help="seconds to wait for a new Pi's first sale")
    parser.add_argument("--no-rerun", action="store_true", help="only the joining Pis: no full site.yml re-runs")
    args = parser.parse_args(argv)
    if not 0 <= args.extra <= 16 or not 60 <= args.sale_timeout <= 3600:
        parser.error(f"expected 0 <= extra <= 16 and a sale timeout of 60..3600 s, got {vars(args)}")
    rerun = Run("site_rerun", "site.yml idempotent re-run time and its growth with the number of Pis", lab=True)
    newpi = Run("new_pi", "New Pi: inventory line to synced and selling", lab=True)
    problem = lab_problem()
    if problem:
        print(f"site_lab: skipped: {problem}")
        if not args.no_rerun:
            rerun.skip(problem)
        if args.extra:
            newpi.skip(problem)
        return 0
    base_pis = lab.inventory_hosts("pis")
    subnet = lab.hostvars()[base_pis[0]]["lab_address"].rsplit(".", 1)[0]
    extras = [
        (f"pi{n}", f"{subnet}.{ADDRESS_BASE + n}", IMAGES[i % 2])
        for i, n in enumerate(range(FIRST_EXTRA, FIRST_EXTRA + args.extra))
    ]
    taken = [name for name, _, _ in extras if name in base_pis or exists(name)]
    if taken:
        reason = f"hosts {', '.join(taken)} already exist in the lab; not touching them"
        print(f"site_lab: {reason}")
        if not args.no_rerun:
            rerun.skip(reason)
        newpi.skip(reason)
        return 0

    # Results are written after every stage, and a stop from outside still removes the added containers.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    logdir = Path(tempfile.mkdtemp(prefix="heliogrid-bench-site-"))
    started: list[str] = []
    runs: list[Timed] = []
    joins: list[Join] = []
    note = stopped = None
    try:
        if not args.no_rerun:
            runs.append(playbook(f"re-run, {len(base_pis)} Pis", len(base_pis), [], logdir))
            rerun.write(rerun_lines(runs, args.extra, logdir, None))
        for group, inventory_pis in ((extras[:1], extras[:1]), (extras[1:], extras)):
            if not group or (joins and joins[-1].run.returncode != 0):
                continue
            joins.append(join(group, inventory_pis, started, logdir))
            if joins[-1].run.returncode == 0:
                follow(joins[-1].joined, args.sale_timeout)
            newpi.write(newpi_lines(joins, None))
        if joins and not args.no_rerun:
            total = len(base_pis) + sum(len(j.joined) for j in joins)
            sources = ["-i", str(ROOT / "inventories" / "lab"), "-i", str(logdir / "extra-pis.json")]
            runs.append(playbook(f"re-run, {total} Pis", total, sources, logdir))
            rerun.write(rerun_lines(runs, args.extra, logdir, None))
    except (Interrupted, KeyboardInterrupt, Exception) as exc:
        stopped = f"interrupted: {type(exc).__name__}: {exc}"
        note = f"Interrupted before the end ({type(exc).__name__}: {exc}); the figures below are what was measured."
        print(f"site_lab: {note}")
        raise
    finally:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        with contextlib.suppress(Exception):
            remove_containers(started)
        if note:
            with contextlib.suppress(Exception):
                if runs:
                    rerun.write(rerun_lines(runs, args.extra, logdir, note))
                elif not args.no_rerun:
                    rerun.skip(stopped)
                if joins:
                    newpi.write(newpi_lines(joins, note))
                elif extras:
                    newpi.skip(stopped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
