"""The ethstats endpoint, spoken to with the messages geth 1.13 sends (ethstats/ethstats.go)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from heliogrid_testing.stats_chain import SECRET
from starlette.websockets import WebSocketDisconnect

from heliogrid_stats.api import create_app
from heliogrid_stats.ethstats import NodeRegistry


def hello(node: str, secret: str = SECRET) -> dict:
    """geth's login(): authMsg with nodeInfo."""
    return {
        "emit": [
            "hello",
            {
                "id": node,
                "info": {
                    "name": node,
                    "node": "Geth/v1.13.14-stable-2bd6bd01/linux-arm64/go1.21.9",
                    "port": 30303,
                    "net": "4242",
                    "protocol": "eth/68, snap/1",
                    "api": "No",
                    "os": "linux",
                    "os_v": "arm64",
                    "client": "0.1.1",
                    "canUpdateHistory": True,
                },
                "secret": secret,
            },
        ]
    }


def block(node: str, number: int, peers_hint: int = 0) -> dict:
    return {
        "emit": [
            "block",
            {
                "id": node,
                "block": {
                    "number": number,
                    "hash": "0x" + f"{number:064x}",
                    "parentHash": "0x" + f"{number - 1:064x}",
                    "timestamp": 1_700_000_000 + number,
                    "miner": "0x" + "ab" * 20,
                    "gasUsed": 21000 * peers_hint,
                    "gasLimit": 30_000_000,
                    "difficulty": "2",
                    "totalDifficulty": str(2 * number),
                    "transactions": [{"hash": "0x" + "cd" * 32}] * peers_hint,
                    "transactionsRoot": "0x" + "00" * 32,
                    "stateRoot": "0x" + "00" * 32,
                    "uncles": [],
                },
            },
        ]
    }


def login(ws, node: str) -> None:
    ws.send_text(json.dumps(hello(node)))
    assert json.loads(ws.receive_text()) == {"emit": ["ready"]}


def test_node_with_the_secret_is_listed_with_its_reports(client):
    with client.websocket_connect("/api") as ws:
        login(ws, "pi-kitchen")
        ws.send_text(json.dumps({"emit": ["node-ping", {"id": "pi-kitchen", "clientTime": "2025-01-01 00:00:00"}]}))
        pong = json.loads(ws.receive_text())
        # geth accepts a pong only as a two-element emit
        assert pong["emit"][0] == "node-pong"
        assert len(pong["emit"]) == 2
        ws.send_text(json.dumps({"emit": ["latency", {"id": "pi-kitchen", "latency": "3"}]}))
        ws.send_text(json.dumps(block("pi-kitchen", 1234, peers_hint=2)))
        ws.send_text(json.dumps({"emit": ["pending", {"id": "pi-kitchen", "stats": {"pending": 4}}]}))
        ws.send_text(
            json.dumps(
                {
                    "emit": [
                        "stats",
                        {
                            "id": "pi-kitchen",
                            "stats": {
                                "active": True,
                                "syncing": False,
                                "mining": False,
                                "hashrate": 0,
                                "peers": 3,
                                "gasPrice": 1000000007,
                                "uptime": 100,
                            },
                        },
                    ]
                }
            )
        )
        # a ping round trip guarantees the server has handled everything sent before it
        ws.send_text(json.dumps({"emit": ["node-ping", {"id": "pi-kitchen", "clientTime": "x"}]}))
        ws.receive_text()
        nodes = client.get("/api/v1/nodes").json()
    assert len(nodes) == 1
    node = nodes[0]
    assert (node["id"], node["online"], node["head"], node["peers"], node["pending"]) == (
        "pi-kitchen",
        True,
        1234,
        3,
        4,
    )
    assert (node["latency_ms"], node["syncing"], node["mining"], node["arch"]) == (3, False, False, "arm64")
    assert node["head_hash"] == "0x" + f"{1234:064x}"
    assert node["client"].startswith("Geth/v1.13.14")


def test_wrong_secret_is_refused_without_ready(client):
    with client.websocket_connect("/api") as ws:
        ws.send_text(json.dumps(hello("intruder", secret="guess")))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1008
    assert client.get("/api/v1/nodes").json() == []


def test_first_message_other_than_hello_is_refused(client):
    with client.websocket_connect("/api") as ws:
        ws.send_text(json.dumps(block("sneaky", 5)))
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()
    assert client.get("/api/v1/nodes").json() == []


@pytest.mark.parametrize("name", ["", "x" * 65, "bad\nname", "<script>"])
def test_unusable_node_names_are_refused(client, name):
    with client.websocket_connect("/api") as ws:
        ws.send_text(json.dumps(hello(name)))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert "node name" in closed.value.reason


def test_empty_secret_disables_reporting(config, w3):
    app = create_app(replace(config, ethstats_secret=""), w3=w3, run_indexer=False)
    with TestClient(app) as c, c.websocket_connect("/api") as ws:
        ws.send_text(json.dumps(hello("sealer-1", secret="")))
        with pytest.raises(WebSocketDisconnect):
            ws.receive_text()


def test_node_shows_offline_after_disconnect_and_online_again_on_reconnect(client):
    with client.websocket_connect("/api") as ws:
        login(ws, "sealer-1")
        ws.send_text(json.dumps(block("sealer-1", 10)))
    nodes = client.get("/api/v1/nodes").json()
    assert [(n["id"], n["online"], n["head"]) for n in nodes] == [("sealer-1", False, 10)]
    with client.websocket_connect("/api") as ws:
        login(ws, "sealer-1")
        assert client.get("/api/v1/nodes").json()[0]["online"] is True


def test_reports_naming_another_node_are_ignored(client):
    with client.websocket_connect("/api") as ws:
        login(ws, "pi-1")
        ws.send_text(json.dumps(block("pi-2", 99)))
        ws.send_text(json.dumps(block("pi-1", 7)))
        ws.send_text(json.dumps({"emit": ["node-ping", {"id": "pi-1", "clientTime": "x"}]}))
        ws.receive_text()
        nodes = client.get("/api/v1/nodes").json()
    assert [(n["id"], n["head"]) for n in nodes] == [("pi-1", 7)]


def test_history_report_moves_the_head_forward_only(client):
    with client.websocket_connect("/api") as ws:
        login(ws, "miner-1")
        ws.send_text(json.dumps(block("miner-1", 60)))
        history = [block("miner-1", n)["emit"][1]["block"] for n in range(10, 50)]
        ws.send_text(json.dumps({"emit": ["history", {"id": "miner-1", "history": history}]}))
        ws.send_text(json.dumps({"emit": ["node-ping", {"id": "miner-1", "clientTime": "x"}]}))
        ws.receive_text()
        assert client.get("/api/v1/nodes").json()[0]["head"] == 60


def test_stale_head_sent_after_reconnect_is_ignored(client):
    with client.websocket_connect("/api") as ws:
        login(ws, "rpc")
        ws.send_text(json.dumps(block("rpc", 31)))  # report(): the current head
        ws.send_text(json.dumps(block("rpc", 1)))  # the head event geth buffered while disconnected
        ws.send_text(json.dumps({"emit": ["node-ping", {"id": "rpc", "clientTime": "x"}]}))
        ws.receive_text()
        assert client.get("/api/v1/nodes").json()[0]["head"] == 31
        ws.send_text(json.dumps(block("rpc", 32)))
        ws.send_text(json.dumps({"emit": ["node-ping", {"id": "rpc", "clientTime": "x"}]}))
        ws.receive_text()
        assert client.get("/api/v1/nodes").json()[0]["head"] == 32


def test_head_is_forgotten_on_reconnect_so_a_reset_node_shows_its_new_chain(client):
    with client.websocket_connect("/api") as ws:
        login(ws, "pi-9")
        ws.send_text(json.dumps(block("pi-9", 500)))
    with client.websocket_connect("/api") as ws:
        login(ws, "pi-9")
        ws.send_text(json.dumps(block("pi-9", 3)))
        ws.send_text(json.dumps({"emit": ["node-ping", {"id": "pi-9", "clientTime": "x"}]}))
        ws.receive_text()
        assert client.get("/api/v1/nodes").json()[0]["head"] == 3


def test_garbage_frames_are_skipped_not_fatal(client):
    with client.websocket_connect("/api") as ws:
        login(ws, "pi-3")
        ws.send_text("not json")
        ws.send_text(json.dumps({"emit": "nope"}))
        ws.send_text(json.dumps({"emit": ["stats", {"id": "pi-3", "stats": {"peers": "many"}}]}))
        ws.send_text(json.dumps({"emit": ["node-ping", {"id": "pi-3", "clientTime": "x"}]}))
        assert json.loads(ws.receive_text())["emit"][0] == "node-pong"
        assert client.get("/api/v1/nodes").json()[0]["peers"] is None


def test_full_registry_drops_the_oldest_offline_node_but_refuses_when_all_are_online():
    registry = NodeRegistry("s", max_nodes=2)
    a = registry.login("a", {})
    registry.login("b", {})
    assert registry.login("c", {}) is None
    registry.logout(a, a.connection)
    assert registry.login("c", {}) is not None
    assert sorted(registry.nodes) == ["b", "c"]


def test_secret_comparison_needs_the_exact_secret():
    registry = NodeRegistry("s3cret")
    assert registry.authorise("s3cret")
    assert not registry.authorise("s3cre")
    assert not registry.authorise(None)
    assert not NodeRegistry("").authorise("")
