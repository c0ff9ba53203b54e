"""The Clique network on the lab, after site.yml (playbooks/network.yml) has been applied to it.

Every check asks the nodes themselves, over each node's IPC socket (heliogrid_testing.chain.rpc).
The tests that grow the lab (a fourth Pi, a sealer vote) are in test_growth.py, last in the system tier.
"""

from __future__ import annotations

import json
import time

from heliogrid_testing.chain import eventually, head_number, heads_in_step, node_ids, peers, period, rpc, signers
from lab import lab
from lab.geth_defaults import geth_defaults

RESULTS = lab.ROOT / "test-results"
PERIOD = period()  # clique_genesis_period in inventories/lab/group_vars/all/network.yml


def sealer_addresses() -> dict[str, str]:
    found = {}
    for host in lab.inventory_hosts("miners"):
        key = lab.podman_exec(f"hg-{host}", "sh", "-c", f"ls {geth_defaults()['geth_datadir']}/keystore").stdout.split()
        found[host] = "0x" + key[0].split("--")[-1]
    return found


def test_the_signers_are_the_three_miners(network):
    assert sorted(signers("miner1")) == sorted(sealer_addresses().values())


def test_every_sealer_seals_blocks_within_a_few_periods(network):
    signers = set(sealer_addresses().values())

    def active() -> set[str]:
        activity = (rpc("stats1", "clique_status") or {}).get("sealerActivity") or {}
        return {address.lower() for address, count in activity.items() if count > 0}

    assert eventually(lambda: active() >= signers, timeout=6 * PERIOD * len(signers))
    assert active() >= signers


def test_the_chain_advances_every_period(network):
    start = head_number("stats1")
    time.sleep(3 * PERIOD)
    assert head_number("stats1") >= start + 2


def test_every_pi_has_a_miner_peer(network):
    miners = set(node_ids(lab.inventory_hosts("miners")).values())
    for pi in lab.inventory_hosts("pis"):
        found = eventually(lambda pi=pi: {p["id"] for p in peers(pi)} & miners, timeout=4 * PERIOD)
        assert found, f"{pi} has no miner among its peers"


def test_every_pi_follows_the_same_chain_head(network):
    hosts = lab.inventory_hosts("miners") + lab.inventory_hosts("stats") + lab.inventory_hosts("pis")
    assert eventually(lambda: heads_in_step(hosts), timeout=6 * PERIOD, interval=PERIOD)


def test_pis_do_not_discover_and_serve_rpc_on_loopback_only(network):
    pi, other = lab.inventory_hosts("pis")[:2]
    config = lab.podman_exec(f"hg-{pi}", "cat", "/etc/geth/config.toml").stdout
    assert "NoDiscovery = true" in config
    probe = "import socket,sys; s=socket.socket(); s.settimeout(3); print(s.connect_ex((sys.argv[1], 8545)))"
    # Answers on its own loopback...
    assert lab.podman_exec(f"hg-{pi}", "python3", "-c", probe, "127.0.0.1").stdout.strip() == "0"
    # ...but not on the address other hosts reach it at.
    address = lab.hostvars()[pi]["lab_address"]
    assert lab.podman_exec(f"hg-{other}", "python3", "-c", probe, address).stdout.strip() != "0"
    assert lab.podman_exec("hg-miner1", "python3", "-c", probe, address).stdout.strip() != "0"


def test_sealers_have_no_http_rpc_at_all(network):
    for miner in lab.inventory_hosts("miners"):
        listening = lab.podman_exec(f"hg-{miner}", "sh", "-c", "cat /proc/net/tcp /proc/net/tcp6").stdout
        assert ":2161 " not in listening.upper(), f"{miner} listens on 8545"  # 0x2161 = 8545


def test_status_playbook_reports_and_writes_json(network, tmp_path):
    report = tmp_path / "status.json"
    run = lab.playbook("playbooks/status.yml", "-e", f"network_status_path={report}")
    assert run.returncode == 0, run.output[-3000:]
    status = json.loads(report.read_text())
    assert sorted(status["chain"]["signers"]) == sorted(sealer_addresses().values())
    assert status["chain"]["last_block_time"] > time.time() - 10 * PERIOD
    for miner in lab.inventory_hosts("miners"):
        assert status["hosts"][miner]["sealer"] is True
    for host in lab.inventory_hosts("pis") + lab.inventory_hosts("stats"):
        assert status["hosts"][host]["sealer"] is False
        assert status["hosts"][host]["peers"] >= 1
    assert "chain: head" in run.output
