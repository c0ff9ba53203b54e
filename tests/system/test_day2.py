"""Day-2 operations on the lab after site.yml (issue #17): a sealer lost for good comes back from its backup as the
same signer, and a rolling restart of every node never stalls the chain. Each test prints its figures ("FIGURE: ...",
run pytest with -s) and leaves the network in step.

The rolling restart comes first: the restore test re-applies site.yml, which takes minutes. That run is also the system
tier's proof that site.yml changes nothing on a converged host: it must change nothing on any host but the one
restored, after every earlier module (the faults included) has run. The restored host is miner3 (trixie), so that
miner1 stands for its kind in that check and miner2, the bookworm sealer, is checked too.
"""

from __future__ import annotations

import itertools
import json
import threading
import time

from heliogrid_testing import agents
from heliogrid_testing.chain import attach, eventually, head_number, heads, heads_in_step, period, rpc, signers
from heliogrid_testing.plugins import plugin
from lab import lab

PERIOD = period()
RESULTS = lab.ROOT / "test-results"
BACKUPS = lab.INVENTORY / "state" / "backups"  # playbooks/vars/backup.yml backup_dir, in the lab's state dir
NODEKEY = "/var/lib/geth/geth/nodekey"  # roles/geth_nodekey, with the lab's default datadir
IN_STEP_WITHIN = 300  # s for every node to follow the same head again
SEALS_WITHIN = 40 * PERIOD  # s for a sealer brought back to seal a block of its own

clique_health = plugin("plugins/filter/clique_health.py")


def every_host() -> list[str]:
    return lab.inventory_hosts("miners") + lab.inventory_hosts("stats") + lab.inventory_hosts("pis")


def started_at(host: str, unit: str) -> float:
    """When the unit last became active, on the kernel clock this process's time.monotonic() reads."""
    return (
        int(agents.unit_properties(host, unit, "ActiveEnterTimestampMonotonic")["ActiveEnterTimestampMonotonic"]) / 1e6
    )


def signers_after(host: str, block: int) -> list[tuple[int, str]]:
    """(number, signer) of the blocks after `block` in the host's chain, read with upgrade.yml's probe."""
    answer = json.loads(attach(host, clique_health.clique_probe_js(block)))
    return [(r["number"], r["signer"].lower()) for r in answer["recent"]]


def wait_in_step(when: str) -> None:
    hosts = every_host()
    assert eventually(lambda: heads_in_step(hosts), timeout=IN_STEP_WITHIN, interval=PERIOD), (
        f"heads not in step {IN_STEP_WITHIN} s {when}: "
        f"{ {h: v.number if v else None for h, v in heads(hosts).items()} }"
    )


class HeadSampler:
    """Each node's head, sampled about every second by a thread per node while a playbook runs: a node being
    restarted (whose IPC socket is gone or slow to answer) delays only its own samples."""

    def __init__(self, hosts: list[str]) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._answers: list[tuple[float, int]] = []  # (time.monotonic(), block number), from any node
        self._threads = [threading.Thread(target=self._run, args=(h,), daemon=True) for h in hosts]

    def _run(self, host: str) -> None:
        while not self._stop.is_set():
            number = head_number(host, check=False, timeout=10)
            if number is not None:
                with self._lock:
                    self._answers.append((time.monotonic(), number))
            self._stop.wait(1)

    def __enter__(self) -> HeadSampler:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    @property
    def samples(self) -> list[tuple[float, int]]:
        """(moment, the highest head any node had reported by then), in time order."""
        highest, out = -1, []
        for moment, number in sorted(self._answers):
            highest = max(highest, number)
            out.append((moment, highest))
        return out

    def longest_stall(self) -> tuple[float, int]:
        """The longest time (s) between two rises of the head, and the block it stood at."""
        samples = self.samples
        longest, at = 0.0, -1
        risen_at, number = samples[0]
        for moment, seen in samples[1:]:
            if seen > number:
                if moment - risen_at > longest:
                    longest, at = moment - risen_at, number
                risen_at, number = moment, seen
        if samples[-1][0] - risen_at > longest:  # still standing at the end
            longest, at = samples[-1][0] - risen_at, number
        return longest, at


def test_a_rolling_restart_of_every_node_never_stalls_the_head_for_more_than_two_periods(site):
    wait_in_step("before the rolling restart")
    miners, pis = lab.inventory_hosts("miners"), lab.inventory_hosts("pis")
    started = time.monotonic()
    first = head_number("miner1")
    with HeadSampler(miners + lab.inventory_hosts("stats")) as sampler:
        run = lab.playbook(
            "playbooks/upgrade.yml", "-e", "geth_upgrade_restart_only=true", log=RESULTS / "day2-upgrade.log"
        )
    assert run.returncode == 0, f"upgrade.yml failed (rc={run.returncode}); last lines:\n{run.output[-6000:]}"

    restarts = {m: started_at(m, "geth") for m in miners}
    assert all(moment > started for moment in restarts.values()), f"a sealer's geth was not restarted: {restarts}"
    order = sorted(miners, key=restarts.get)
    gaps = [restarts[b] - restarts[a] for a, b in itertools.pairwise(order)]
    print(f"FIGURE: sealers restarted {', '.join(f'{g:.1f}' for g in gaps)} s apart (period {PERIOD} s)")
    # In turn: no sealer restarted before the one restarted just before it had sealed again. A block counts for the
    # earlier sealer if it signed it, it is above the highest head any node had shown at that sealer's restart, and a
    # node had shown it by the next sealer's restart (the heads are sampled about every second).
    signed = dict(signers_after("miner1", first))
    etherbase = {m: rpc(m, "eth_coinbase").lower() for m in miners}
    for a, b in itertools.pairwise(order):
        before = max((n for moment, n in sampler.samples if moment <= restarts[a]), default=first)
        shown = {n for moment, n in sampler.samples if moment <= restarts[b]}
        again = [n for n, who in signed.items() if who == etherbase[a] and before < n <= max(shown, default=-1)]
        assert again, (
            f"{b} was restarted {restarts[b] - restarts[a]:.1f} s after {a}, before {a} had sealed a block again "
            f"(head {before} at its restart; signers after #{first}: {signed})"
        )
    assert all(started_at(p, agents.UNIT) > started for p in pis), "an agent was not restarted"
    assert all(started_at(p, "geth") > started for p in pis), "a Pi's geth was not restarted"

    stall, at = sampler.longest_stall()
    last = head_number("miner1")
    times = attach(
        "miner1",
        f"(function () {{ var t = []; for (var n = {first}; n <= {last}; n++) t.push(eth.getBlock(n).timestamp);"
        " return t; })()",
    )
    widest = max((b - a for a, b in itertools.pairwise(times)), default=0)
    print(
        f"FIGURE: during upgrade.yml ({time.monotonic() - started:.0f} s, blocks {first}..{last}) the head stood "
        f"still for {stall:.1f} s at most (at #{at}); block times {widest} s apart at most; period {PERIOD} s"
    )
    assert len(sampler.samples) > 10, f"only {len(sampler.samples)} head samples"
    assert last - first >= 3, f"the chain went from {first} to {last} while the nodes were restarted"
    # A sample every ~1 s per node: one second of slack over two periods.
    assert stall <= 2 * PERIOD + 1, f"the head stood still {stall:.1f} s at #{at}, over 2 periods of {PERIOD} s"
    assert widest <= 2 * PERIOD, f"two blocks {widest} s apart, over 2 periods of {PERIOD} s"
    wait_in_step("after the rolling restart")


def test_a_destroyed_sealer_comes_back_from_its_backup_and_site_yml_changes_no_other_host(site):
    miner = "miner3"
    wait_in_step("before the backup")
    signer = rpc(miner, "eth_coinbase").lower()
    node_id = rpc(miner, "admin_nodeInfo")["id"]
    wg_key = lab.podman_exec(f"hg-{miner}", "wg", "show", "wg0", "public-key").stdout.strip()
    nodekey = lab.podman_exec(f"hg-{miner}", "cat", NODEKEY).stdout.strip()

    backup = lab.playbook("playbooks/backup.yml", "--limit", miner, log=RESULTS / "day2-backup.log")
    assert backup.returncode == 0, f"backup.yml failed; last lines:\n{backup.output[-6000:]}"
    archive = (BACKUPS / miner / "latest.tar.gz.vault").resolve()
    assert archive.read_bytes().startswith(b"$ANSIBLE_VAULT;")
    assert oct(archive.stat().st_mode & 0o777) == oct(0o600)
    assert nodekey not in backup.output, "backup.yml printed the nodekey"
    assert nodekey.encode() not in archive.read_bytes()

    lab.destroy([miner])
    lost = time.monotonic()
    lab.cli("up", miner)
    assert lab.podman_exec(f"hg-{miner}", "test", "-e", NODEKEY, check=False).returncode != 0, "not a new machine"

    restore = lab.playbook("playbooks/restore.yml", "--limit", miner, log=RESULTS / "day2-restore.log")
    assert restore.returncode == 0, f"restore.yml failed; last lines:\n{restore.output[-6000:]}"
    again = lab.playbook("playbooks/restore.yml", "--limit", miner, log=RESULTS / "day2-restore-again.log")
    assert again.returncode == 0, f"restore.yml failed the second time; last lines:\n{again.output[-6000:]}"
    assert again.recap[miner]["changed"] == 0, f"a second restore changed {again.recap[miner]['changed']} things"

    rebuilt = lab.playbook("site.yml", log=RESULTS / "day2-site-after-restore.log")
    assert rebuilt.returncode == 0, f"site.yml after the restore failed; last lines:\n{rebuilt.output[-6000:]}"
    # The tier's idempotence check: nothing changed on any other host. A hub's peers are written by every node's own
    # run onto the hub (`changed: [pi1 -> miner3(...)]`), so a change counts where it landed, not who delegated it.
    assert set(every_host()) <= set(rebuilt.recap)
    elsewhere = sorted({f"{host} -> {where}" for host, where in rebuilt.changes if where != miner})
    assert elsewhere == [], f"site.yml after the restore changed hosts other than {miner}: {elsewhere}"
    counted = {h for h, r in rebuilt.recap.items() if r["changed"]}
    assert counted <= {host for host, _ in rebuilt.changes}, f"changes the log does not show: {rebuilt.recap}"
    back = head_number("miner1")
    assert rpc(miner, "eth_coinbase").lower() == signer
    assert rpc(miner, "admin_nodeInfo")["id"] == node_id
    assert lab.podman_exec(f"hg-{miner}", "wg", "show", "wg0", "public-key").stdout.strip() == wg_key
    assert signer in [s.lower() for s in signers("miner1")]

    sealed = eventually(
        lambda: [n for n, s in signers_after("miner1", back) if s == signer], timeout=SEALS_WITHIN, interval=PERIOD
    )
    print(
        f"FIGURE: {miner} sealing again as {signer} (block #{sealed[0] if sealed else '-'}) "
        f"{time.monotonic() - lost:.0f} s after its container was destroyed"
    )
    assert sealed, f"{miner} ({signer}) sealed none of the blocks after #{back} within {SEALS_WITHIN} s"
    wait_in_step("after the restore")
