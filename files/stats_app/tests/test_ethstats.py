"""The ethstats endpoint, spoken to with the messages geth 1.13 sends (ethstats/ethstats.go), by nodes that each
have their own credential (the `credentials` fixture) and by nodes that try without one."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from heliogrid_testing.ethstats_credentials import enrol, node_secret
from starlette.websockets import WebSocketDisconnect

from heliogrid_stats.api import create_app
from heliogrid_stats.credentials import Credentials, matches, secret_digest
from heliogrid_stats.ethstats import MAX_HELLO_BYTES, MAX_WAITING, NodeRegistry


def hello(node, secret: str | None = None, padding: int = 0) -> dict:
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
                    **({"padding": "x" * padding} if padding else {}),
                },
                "secret": node_secret(node) if secret is None else secret,
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


def login(ws, node: str, secret: str | None = None) -> None:
    ws.send_text(json.dumps(hello(node, secret)))
    assert json.loads(ws.receive_text()) == {"emit": ["ready"]}


def refused(client: TestClient, message: dict) -> WebSocketDisconnect:
    """Send `message` first on a new connection; the server must close it without "ready"."""
    with client.websocket_connect("/api") as ws:
        ws.send_text(json.dumps(message))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    return closed.value


def listed(client: TestClient) -> dict[str, bool]:
    """Node name -> online, as the API lists them."""
    return {n["id"]: n["online"] for n in client.get("/api/v1/nodes").json()}


def round_trip(ws, node: str) -> None:
    """A ping round trip: the server has handled everything sent before it."""
    ws.send_text(json.dumps({"emit": ["node-ping", {"id": node, "clientTime": "x"}]}))
    assert json.loads(ws.receive_text())["emit"][0] == "node-pong"


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
    closed = refused(client, hello("sealer-1", secret="guess"))
    assert (closed.code, closed.reason) == (1008, "unauthorized")
    assert listed(client) == {}


def test_node_using_another_nodes_name_with_its_own_secret_is_refused(client):
    with client.websocket_connect("/api") as sealer:
        login(sealer, "sealer-1")
        closed = refused(client, hello("sealer-1", secret=node_secret("pi-1")))
        assert (closed.code, closed.reason) == (1008, "unauthorized")
        # the real node keeps its connection and its place
        sealer.send_text(json.dumps(block("sealer-1", 42)))
        round_trip(sealer, "sealer-1")
        assert listed(client) == {"sealer-1": True}
        assert client.get("/api/v1/nodes").json()[0]["head"] == 42


def test_name_without_a_credential_is_refused_and_never_listed(client):
    closed = refused(client, hello("pi-unknown", secret=node_secret("pi-unknown")))
    assert (closed.code, closed.reason) == (1008, "unauthorized")
    assert listed(client) == {}


def test_refusal_is_logged_with_the_claimed_name_and_the_peer_never_the_secret(client, caplog):
    caplog.set_level(logging.WARNING, logger="heliogrid_stats")
    refused(client, hello("sealer-1", secret="my-own-secret-4f1d"))
    refused(client, hello("pi-unknown", secret="another-secret-8c2e"))
    refused(client, hello("bad/name", secret="third-secret-77aa"))
    # "testclient:<port>": the peer address starlette's test client reports
    assert [re.sub(r":\d+ ", ":<port> ", r.getMessage()) for r in caplog.records] == [
        "ethstats: node 'sealer-1' from testclient:<port> refused: wrong secret",
        "ethstats: node 'pi-unknown' from testclient:<port> refused: no credential for this name",
        "ethstats: node 'bad/name' from testclient:<port> refused: not a node name",
    ]


def test_credential_added_while_running_lets_that_node_in_without_a_restart(client, credentials):
    closed = refused(client, hello("pi-4"))
    assert closed.code == 1008
    enrol(credentials, "pi-4")
    with client.websocket_connect("/api") as ws:
        login(ws, "pi-4")
        assert listed(client) == {"pi-4": True}


@pytest.mark.parametrize(
    ("content", "mode"),
    [
        (f"sha256:{secret_digest(node_secret('pi-5'))}\n", 0o660),  # the right digest, but others may write it
        (f"sha256:{secret_digest(node_secret('pi-5')).upper()}", 0o640),
        (secret_digest(node_secret("pi-5")), 0o640),
        (node_secret("pi-5"), 0o640),  # the secret itself instead of its digest
    ],
    ids=["others may write it", "upper case", "no sha256 prefix", "the secret itself"],
)
def test_unsafe_or_malformed_credential_is_no_credential_and_is_logged(client, credentials, caplog, content, mode):
    path = credentials / "pi-5"
    path.write_text(content)
    path.chmod(mode)
    caplog.set_level(logging.WARNING, logger="heliogrid_stats")
    closed = refused(client, hello("pi-5"))
    assert closed.code == 1008
    assert any(f"credential {path} ignored" in r.getMessage() for r in caplog.records)
    assert listed(client) == {}


def test_first_message_other_than_hello_is_refused(client):
    refused(client, block("sneaky", 5))
    assert listed(client) == {}


def test_hello_bigger_than_the_limit_is_refused_even_with_the_right_secret(client):
    closed = refused(client, hello("pi-1", padding=MAX_HELLO_BYTES))
    assert closed.code == 1008
    assert str(MAX_HELLO_BYTES) in closed.reason
    assert listed(client) == {}
    with client.websocket_connect("/api") as ws:  # a hello just under the limit is a hello
        login_message = hello("pi-1", padding=MAX_HELLO_BYTES - 1000)
        assert len(json.dumps(login_message)) < MAX_HELLO_BYTES
        ws.send_text(json.dumps(login_message))
        assert json.loads(ws.receive_text()) == {"emit": ["ready"]}


def test_connections_waiting_to_log_in_are_capped(client, app):
    with contextlib.ExitStack() as stack:
        waiting = [stack.enter_context(client.websocket_connect("/api")) for _ in range(MAX_WAITING)]
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/api"):
            pass
        assert closed.value.code == 1008  # before the websocket opened: uvicorn answers HTTP 403
        # one of them logs in: its place is free again, and the registry only ever holds the node that did
        login(waiting[0], "pi-1")
        with client.websocket_connect("/api") as late:
            login(late, "pi-2")
        assert listed(client) == {"pi-1": True, "pi-2": False}
    assert app.state.stats.gate.waiting == 0


@pytest.mark.parametrize(
    "name", ["", "x" * 65, "bad\nname", "pi-1\n", "<script>", "../pi-1", ".hidden", "pi 1", 7, None]
)
def test_unusable_node_names_are_refused(client, name):
    closed = refused(client, hello(name, secret="whatever"))
    assert closed.code == 1008
    assert "node name" in closed.reason


def test_without_a_credentials_directory_no_node_may_report(config, w3):
    app = create_app(replace(config, ethstats_credentials_dir=None), w3=w3, run_indexer=False)
    with TestClient(app) as c:
        assert refused(c, hello("sealer-1")).code == 1008


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
    registry = NodeRegistry(max_nodes=2)
    a = registry.login("a", {})
    registry.login("b", {})
    assert registry.login("c", {}) is None
    registry.logout(a, a.connection)
    assert registry.login("c", {}) is not None
    assert sorted(registry.nodes) == ["b", "c"]


def test_secret_comparison_needs_the_exact_secret():
    digest = secret_digest("s3cret")
    assert matches("s3cret", digest)
    assert not matches("s3cre", digest)
    assert not matches(None, digest)
    assert not matches(["s3cret"], digest)
    assert not matches("\ud800", digest)  # JSON can carry a lone surrogate; it is a wrong secret, not a crash


def test_credential_is_looked_up_only_for_a_node_name(credentials):
    (credentials.parent / "outside").write_text(f"sha256:{secret_digest('x')}")
    store = Credentials(credentials)
    assert store.digest("../outside") is None
    assert store.digest("pi-1") == secret_digest(node_secret("pi-1"))
