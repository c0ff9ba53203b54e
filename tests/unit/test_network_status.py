"""The status report filters of playbooks/status.yml."""

from __future__ import annotations

import json

from heliogrid_testing.plugins import plugin

network_status = plugin("plugins/filter/network_status.py")


SIGNERS = ["0xAAAA000000000000000000000000000000000001", "0xaaaa000000000000000000000000000000000002"]


def answer(**fields: object) -> dict:
    """A registered `geth attach --exec 'JSON.stringify(...)'` result: a JSON string printed as a JS string."""
    body = {
        "block": 10,
        "hash": "0x" + "ab" * 32,
        "block_time": 1_700_000_000,
        "peers": 2,
        "syncing": False,
        "mining": False,
        "etherbase": None,
        "signers": SIGNERS,
        "activity": {"sealerActivity": {SIGNERS[0]: 3, SIGNERS[1]: 2}, "numBlocks": 5},
    }
    body.update(fields)
    return {"rc": 0, "stdout": json.dumps(json.dumps(body)), "stderr": ""}


def test_sealer_is_a_mining_node_whose_etherbase_is_a_signer() -> None:
    report = network_status.network_status_report(
        {
            "miner1": answer(mining=True, etherbase=SIGNERS[0].lower()),
            "miner9": answer(mining=True, etherbase="0x" + "99" * 20),
            "pi1": answer(),
        }
    )
    assert report["hosts"]["miner1"]["sealer"] is True
    assert report["hosts"]["miner9"]["sealer"] is False
    assert report["hosts"]["pi1"]["sealer"] is False


def test_chain_facts_come_from_the_most_advanced_node() -> None:
    report = network_status.network_status_report(
        {"a": answer(block=9, block_time=100), "b": answer(block=12, block_time=160)}
    )
    assert report["chain"]["head_block"] == 12
    assert report["chain"]["last_block_time"] == 160
    assert report["chain"]["last_block_time_iso"] == "1970-01-01T00:02:40Z"
    assert report["chain"]["signers"] == [s.lower() for s in SIGNERS]
    assert report["chain"]["signer_activity"] == {SIGNERS[0].lower(): 3, SIGNERS[1]: 2}


def test_unreachable_node_is_reported_with_its_error_not_dropped() -> None:
    failed = {"rc": 1, "stdout": "", "stderr": "Fatal: Unable to attach to remote geth: no such file"}
    report = network_status.network_status_report({"pi2": failed, "pi1": answer()})
    assert report["hosts"]["pi2"] == {
        "reachable": False,
        "error": "Fatal: Unable to attach to remote geth: no such file",
        "block": None,
        "peers": None,
        "syncing": False,
        "sealer": False,
        "etherbase": None,
    }
    assert "pi2: UNREACHABLE (Fatal: Unable to attach" in "\n".join(network_status.network_status_lines(report))


def test_syncing_object_counts_as_syncing() -> None:
    report = network_status.network_status_report({"pi1": answer(syncing={"currentBlock": 3, "highestBlock": 9})})
    assert report["hosts"]["pi1"]["syncing"] is True
    assert "pi1: node, block 10, 2 peers, syncing" in network_status.network_status_lines(report)
