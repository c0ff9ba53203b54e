"""Growing the lab, last in the system tier (these tests leave hosts on every hub that site.yml does not list): a
fourth Pi joins with a run limited to it, and a fourth miner is voted in as a sealer by the current ones, then out.

They run after test_day2, whose site.yml after the restore is the tier's no-op check on every host but the restored
one: a host added here and then removed would still be on every node's peers until a full site.yml.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from heliogrid_testing import agents
from heliogrid_testing.chain import (
    Contracts,
    block_hash,
    eventually,
    head_number,
    node_ids,
    peers,
    period,
    rpc,
    signers,
)
from lab import lab

RESULTS = lab.ROOT / "test-results"
PERIOD = period()


# --- Growing the lab: hosts outside hosts.yml, added through a second inventory source. ---------------------


@pytest.fixture
def extra_host(tmp_path: Path) -> Iterator:
    """Start a lab container for a host that hosts.yml does not list; return the extra inventory to add it."""
    started: list[str] = []

    def start(name: str, address: str, image: str, groups: str) -> Path:
        lab.up([name], extra=[lab.LabHost(name, address, image, ("extra",))])
        started.append(f"hg-{name}")
        inventory = tmp_path / f"{name}.yml"
        ssh = lab.ROOT / ".lab" / "ssh"
        # The extra source lives in tmp: what group_vars derive from inventory_dir is given here (the state dir holds
        # the deployment record and each host's ethstats secret).
        state = lab.ROOT / "inventories" / "lab" / "state"
        overlay = "10.77.0." + address.rsplit(".", 1)[1]  # the lab's plan: the same host number on the overlay
        body = {name: {"lab_address": address, "overlay_address": overlay, "lab_image": image}}
        body[name]["heliogrid_state_dir"] = str(state)
        if groups == "pis":
            body[name] |= {
                "ansible_ssh_private_key_file": str(ssh / "id_ed25519"),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={ssh / 'known_hosts'} -o StrictHostKeyChecking=yes",
            }
            tree = {"all": {"children": {"pis": {"hosts": body}}}}
        else:
            body[name]["ansible_host"] = f"hg-{name}"  # literal: a templated name breaks delegate_to (see report)
            tree = {"all": {"children": {"cloud": {"children": {"miners": {"hosts": body}}}}}}
        inventory.write_text(json.dumps(tree))
        return inventory

    yield start
    for container in started:
        lab.podman("rm", "-f", "-t", "5", container, check=False)


@pytest.mark.slow
def test_a_fourth_pi_joins_with_a_limited_run_and_syncs(network, extra_host):
    inventory = extra_host("pi4", "10.213.7.34", "trixie-amd64", "pis")
    sources = ["-i", str(lab.ROOT / "inventories" / "lab"), "-i", str(inventory)]
    reader = Contracts("stats1")
    market_before = (reader.tariff(), reader.tolerance_percent())
    run = lab.playbook("site.yml", *sources, "--limit", "pi4", log=RESULTS / "site-limit-pi4.log")
    assert run.returncode == 0, run.output[-3000:]
    assert {h: r["changed"] for h, r in run.recap.items() if h != "pi4" and r["changed"]} == {}, "only pi4 changes"
    # The contracts play runs delegated from pi4 in this run: it must still deploy with the deployer's settings.
    assert (reader.tariff(), reader.tolerance_percent()) == market_before, "the limited run changed the market"
    miners = set(node_ids(lab.inventory_hosts("miners")).values())
    assert eventually(lambda: {p["id"] for p in peers("pi4")} & miners, timeout=6 * PERIOD)
    # Over the overlay: the same limited run gave pi4 its key and wrote its entry on every hub, which now knows it.
    remote = {p["network"]["remoteAddress"].rsplit(":", 1)[0] for p in peers("pi4")}
    assert remote, "pi4 has no peer"
    assert all(address.startswith("10.77.0.") for address in remote), remote
    pi4_key = lab.podman_exec("hg-pi4", "wg", "show", "wg0", "public-key").stdout.strip()
    for hub in lab.inventory_hosts("miners") + lab.inventory_hosts("stats"):
        handshakes = lab.podman_exec(f"hg-{hub}", "wg", "show", "wg0", "latest-handshakes").stdout
        assert pi4_key in handshakes, f"{hub} does not know pi4's key"
    head = head_number("miner1")
    assert eventually(lambda: (head_number("pi4") or 0) >= head, timeout=12 * PERIOD)

    # The same chain: the same block at that height, once a reorg has settled. A head can still be replaced: geth's
    # Clique sealer may sign two blocks at one height when a transaction arrives as it seals (make test 2026-12-05:
    # block 232 signed twice by one sealer, with the transaction and without; the network kept the empty one and the
    # transaction went into 233), and miner1 had the other one when this test read it.
    def same_block() -> bool:
        ours = block_hash("pi4", head)
        return ours is not None and ours == block_hash("miner1", head)

    assert eventually(same_block, timeout=4 * PERIOD), (head, block_hash("pi4", head), block_hash("miner1", head))

    # The same limited run registered pi4's meter (the contracts play): the chain knows the agent's account.
    status = eventually(lambda: agents.status("pi4"), timeout=60)
    assert status, "pi4: the agent does not answer on its LAN page"
    try:
        registered = {m.lower() for m in reader.registered_meters()}
        assert status["address"].lower() in registered, f"pi4's meter {status['address']} is not registered"
        assert reader.meter(status["address"]).active
    finally:
        reader.close()


@pytest.mark.slow
def test_a_sealer_is_voted_in_and_out_by_the_current_sealers(network, extra_host):
    inventory = extra_host("miner4", "10.213.7.14", "trixie-amd64", "miners")
    sources = ["-i", str(lab.ROOT / "inventories" / "lab"), "-i", str(inventory)]
    before = sorted(signers("miner1"))

    added = lab.playbook(
        "playbooks/sealer_vote.yml", *sources, "-e", "sealer_vote_host=miner4", log=RESULTS / "sealer-vote-add.log"
    )
    assert added.returncode == 0, added.output[-3000:]
    voted = signers("miner1")
    (new,) = set(voted) - set(before)
    assert len(voted) == len(before) + 1

    # The new sealer takes its turn: a block sealed by it appears within a few rounds.
    def sealed_by_new() -> bool:
        activity = (rpc("miner1", "clique_status") or {}).get("sealerActivity") or {}
        return activity.get(new, 0) > 0 or activity.get(new.lower(), 0) > 0

    assert eventually(sealed_by_new, timeout=8 * PERIOD * len(voted))

    removed = lab.playbook(
        "playbooks/sealer_vote.yml",
        *sources,
        "-e",
        "sealer_vote_host=miner4",
        "-e",
        "sealer_vote_action=remove",
        log=RESULTS / "sealer-vote-remove.log",
    )
    assert removed.returncode == 0, removed.output[-3000:]
    assert sorted(signers("miner1")) == before
