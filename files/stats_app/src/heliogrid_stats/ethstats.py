"""A minimal ethstats server: the websocket endpoint geth's own `--ethstats` reporter talks to.

Every node started with `--ethstats <name>:<secret>@<host>` (sealers, the stats node, Pis) dials
`ws(s)://<host>/api` and keeps reporting its head block, peer count, sync state and pending
transactions, so the page lists every node, not only the stats node's own peers. The message
format follows geth 1.13 `ethstats/ethstats.go`:

  client: {"emit": ["hello", {"id", "info": {...}, "secret"}]}   server: {"emit": ["ready"]}
  client: {"emit": ["node-ping", {"id", "clientTime"}]}          server: {"emit": ["node-pong", {...}]}
  client: {"emit": ["latency"|"block"|"pending"|"stats"|"history", {"id", ...}]}

Each node has its own secret, recorded by its name in the credentials directory (credentials.py). A hello whose
secret is not the one recorded for its name gets no "ready": the socket is closed (geth logs "Stats login failed").
Only a node that logged in gets an entry in the registry; until then a connection is held under tight limits
(`Gate`), so nobody without a credential can fill the server's slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from heliogrid_stats.credentials import NODE_NAME, Credentials, matches

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 10.0  # seconds a new connection may take to say hello
MAX_WAITING = 32  # connections that have not logged in yet, at once; more are refused
MAX_HELLO_BYTES = 16 * 1024  # a geth hello is about 400 bytes
POLICY_VIOLATION = 1008


@dataclass
class Gate:
    """Who may report (the credentials), and the limits on connections that have not logged in yet."""

    credentials: Credentials
    max_waiting: int = MAX_WAITING
    max_hello_bytes: int = MAX_HELLO_BYTES
    waiting: int = 0  # connections accepted and not logged in yet


@dataclass
class NodeState:
    id: str
    info: dict[str, Any] = field(default_factory=dict)
    connected: bool = False
    first_seen: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    latency_ms: int | None = None
    block: dict[str, Any] | None = None
    peers: int | None = None
    syncing: bool | None = None
    mining: bool | None = None
    gas_price: int | None = None
    pending: int | None = None
    connection: int = 0  # which websocket currently speaks for this node

    def as_dict(self, now: float, stale_after: float) -> dict[str, Any]:
        block = self.block or {}
        return {
            "id": self.id,
            "client": self.info.get("node"),
            "os": self.info.get("os"),
            "arch": self.info.get("os_v"),
            "network": self.info.get("net"),
            "protocols": self.info.get("protocol"),
            "online": self.connected and now - self.last_seen <= stale_after,
            "last_seen": int(self.last_seen),
            "latency_ms": self.latency_ms,
            "peers": self.peers,
            "syncing": self.syncing,
            "mining": self.mining,
            "pending": self.pending,
            "gas_price": self.gas_price,
            "head": block.get("number"),
            "head_hash": block.get("hash"),
            "head_time": block.get("timestamp"),
            "head_miner": block.get("miner"),
        }


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return None
    return None


class NodeRegistry:
    """What each reporting node said last. Kept in memory: nodes re-report within seconds of a restart."""

    def __init__(self, max_nodes: int = 256, stale_after: float = 60.0) -> None:
        self.max_nodes = max_nodes
        self.stale_after = stale_after
        self.nodes: dict[str, NodeState] = {}
        self._connections = 0
        self.version = 0  # counts changes: a summary built at this version still shows the nodes as they are

    def login(self, node_id: str, info: dict[str, Any]) -> NodeState | None:
        """Register a connection for `node_id`; None when the registry is full of online nodes."""
        node = self.nodes.get(node_id)
        if node is None:
            if len(self.nodes) >= self.max_nodes and not self._evict_one():
                return None
            node = self.nodes[node_id] = NodeState(id=node_id)
        self._connections += 1
        self.version += 1
        node.info, node.connected, node.connection, node.last_seen = info, True, self._connections, time.time()
        node.block = None  # the node may have been reset; its first report after login is its current head
        return node

    def _evict_one(self) -> bool:
        offline = [n for n in self.nodes.values() if not n.connected]
        if not offline:
            return False
        del self.nodes[min(offline, key=lambda n: n.last_seen).id]
        return True

    def logout(self, node: NodeState, connection: int) -> None:
        if node.connection == connection:  # a newer connection for the same name stays
            node.connected = False
            self.version += 1

    def seen(self, node: NodeState) -> None:
        """The node said something (a ping): it is online as of now."""
        node.last_seen = time.time()
        self.version += 1

    def update(self, node: NodeState, kind: str, payload: dict[str, Any]) -> None:
        self.seen(node)
        if kind == "latency":
            node.latency_ms = _int(payload.get("latency"))
        elif kind == "block" and isinstance(payload.get("block"), dict):
            # After a reconnect geth sends the current head, then the head event it buffered while it was
            # disconnected, which can be far older: a report below the known head is stale. Equal is a
            # reorg replacing the block at that height.
            self._set_block(node, payload["block"], at_least=0)
        elif kind == "history" and isinstance(payload.get("history"), list):
            blocks = [b for b in payload["history"] if isinstance(b, dict) and _int(b.get("number")) is not None]
            if blocks:
                self._set_block(node, max(blocks, key=lambda b: _int(b["number"]) or 0), at_least=1)
        elif kind == "pending" and isinstance(payload.get("stats"), dict):
            node.pending = _int(payload["stats"].get("pending"))
        elif kind == "stats" and isinstance(payload.get("stats"), dict):
            stats = payload["stats"]
            node.peers = _int(stats.get("peers"))
            node.syncing = bool(stats.get("syncing"))
            node.mining = bool(stats.get("mining"))
            node.gas_price = _int(stats.get("gasPrice"))

    @staticmethod
    def _set_block(node: NodeState, block: dict[str, Any], *, at_least: int) -> None:
        """Take `block` as the node's head if its number is at least `at_least` above the current head."""
        number = _int(block.get("number"))
        if number is None:
            return
        current = (node.block or {}).get("number")
        if current is not None and number < current + at_least:
            return
        txs = block.get("transactions")
        node.block = {
            "number": number,
            "hash": str(block.get("hash", "")),
            "miner": str(block.get("miner", "")),
            "timestamp": _int(block.get("timestamp")),
            "gas_used": _int(block.get("gasUsed")),
            "transactions": len(txs) if isinstance(txs, list) else None,
        }

    def snapshot(self) -> list[dict[str, Any]]:
        now = time.time()
        return [n.as_dict(now, self.stale_after) for n in sorted(self.nodes.values(), key=lambda n: n.id)]


def _parse(text: str) -> tuple[str, Any] | None:
    """(command, payload) of an ethstats frame, or None for anything else."""
    try:
        message = json.loads(text)
    except ValueError:
        return None
    emit = message.get("emit") if isinstance(message, dict) else None
    if not isinstance(emit, list) or not emit or not isinstance(emit[0], str):
        return None
    return emit[0], emit[1] if len(emit) > 1 else None


async def serve_node(websocket: WebSocket, gate: Gate, registry: NodeRegistry) -> None:
    """Speak the ethstats protocol with one reporting node until it goes away."""
    peer = _peer(websocket)
    if gate.waiting >= gate.max_waiting:
        log.warning("ethstats: connection from %s refused: %d others have not logged in yet", peer, gate.waiting)
        await _close(websocket, "too many connections waiting to log in")  # not accepted yet: HTTP 403
        return
    gate.waiting += 1
    try:
        hello = await _hello(websocket, gate, peer)
    finally:
        gate.waiting -= 1
    if hello is None:
        return
    node_id, info = hello
    node = registry.login(node_id, info)
    if node is None:
        await _close(websocket, f"node limit of {registry.max_nodes} reached")
        return
    connection = node.connection
    log.info("ethstats: node %r connected from %s", node_id, peer)
    await websocket.send_text(json.dumps({"emit": ["ready"]}))
    try:
        while True:
            parsed = _parse(await websocket.receive_text())
            if parsed is None:
                continue
            command, body = parsed
            log.debug("ethstats: %r sent %s", node_id, str(body)[:300])
            if not isinstance(body, dict) or body.get("id") != node_id:
                continue
            if command == "node-ping":
                pong = {"clientTime": body.get("clientTime"), "serverTime": int(time.time() * 1000)}
                await websocket.send_text(json.dumps({"emit": ["node-pong", pong]}))
                registry.seen(node)
            else:
                registry.update(node, command, body)
    except (WebSocketDisconnect, KeyError):  # KeyError: starlette's receive_text on a binary frame
        pass
    finally:
        registry.logout(node, connection)
        log.info("ethstats: node %r disconnected", node_id)


async def _hello(websocket: WebSocket, gate: Gate, peer: str) -> tuple[str, dict[str, Any]] | None:
    """Accept the connection and read its hello: (node name, node info) when the secret is the node's own, else
    None with the socket closed."""
    await websocket.accept()
    try:
        text = await asyncio.wait_for(websocket.receive_text(), HELLO_TIMEOUT)
    except (TimeoutError, WebSocketDisconnect, KeyError):
        await _close(websocket, "expected a hello message")
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > gate.max_hello_bytes:
        log.warning("ethstats: connection from %s refused: a first message of %d bytes", peer, size)
        await _close(websocket, f"expected a hello message of at most {gate.max_hello_bytes} bytes")
        return None
    hello = _parse(text)
    payload = hello[1] if hello and hello[0] == "hello" else None
    if not isinstance(payload, dict):
        await _close(websocket, "expected a hello message")
        return None
    node_id = payload.get("id")
    if not isinstance(node_id, str) or not NODE_NAME.fullmatch(node_id):
        log.warning("ethstats: node %s from %s refused: not a node name", _claimed(node_id), peer)
        await _close(websocket, "expected a node name: a letter or digit, then up to 63 letters, digits or ._-")
        return None
    digest = gate.credentials.digest(node_id)
    if digest is None or not matches(payload.get("secret"), digest):
        why = "no credential for this name" if digest is None else "wrong secret"
        log.warning("ethstats: node %r from %s refused: %s", node_id, peer, why)
        await _close(websocket, "unauthorized")
        return None
    info = payload.get("info") if isinstance(payload.get("info"), dict) else {}
    return node_id, {k: v for k, v in info.items() if isinstance(v, str | int | bool)}


def _peer(websocket: WebSocket) -> str:
    """The client's address (nginx's X-Forwarded-For, which uvicorn trusts from 127.0.0.1 only)."""
    client = websocket.client
    return f"{client.host}:{client.port}" if client else "unknown peer"


def _claimed(value: Any) -> str:
    """A claimed name for the log: repr, cut short (a hello may carry 16 KiB of it)."""
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


async def _close(websocket: WebSocket, reason: str) -> None:
    with contextlib.suppress(RuntimeError):  # already closed by the peer
        await websocket.close(code=POLICY_VIOLATION, reason=reason)
