"""heliogrid_testing.chain.rpc: the system tests' JSON-RPC over a node's IPC socket, against a fake node here.

The socket is reached as on the lab, through /proc/<pid>/root: the "container" is this process, whose root is the
machine's, so the fake node's socket in tmp is found at /proc/<this pid>/root/<tmp>/geth.ipc.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from heliogrid_testing import chain
from lab import lab


class FakeNode:
    """Answers each request on a unix socket with answer(request), sent in pieces of `chunk` bytes."""

    def __init__(self, path: Path, answer: Callable[[dict], dict], chunk: int = 7) -> None:
        self.requests: list[dict] = []
        self._answer, self._chunk = answer, chunk
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                request = json.loads(conn.recv(65536))
                self.requests.append(request)
                body = json.dumps(self._answer(request)).encode() + b"\n"
                for i in range(0, len(body), self._chunk):
                    conn.sendall(body[i : i + self._chunk])

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeNode]]:
    socket_path = tmp_path / "geth.ipc"
    monkeypatch.setattr(chain, "IPC", str(socket_path))
    asked: list[bool] = []

    def pid(host: str, refresh: bool = False) -> int:
        asked.append(refresh)
        return os.getpid()

    monkeypatch.setattr(chain, "container_pid", pid)
    started: list[FakeNode] = []

    def start(answer: Callable[[dict], dict], chunk: int = 7) -> FakeNode:
        fake = FakeNode(socket_path, answer, chunk)
        started.append(fake)
        return fake

    start.pid_requests = asked  # type: ignore[attr-defined]
    yield start
    for fake in started:
        fake.close()


def test_an_answer_in_pieces_is_read_whole_and_the_request_is_json_rpc(node) -> None:
    fake = node(lambda r: {"jsonrpc": "2.0", "id": r["id"], "result": {"number": "0x2a", "peers": ["a" * 64] * 40}})
    assert chain.rpc("miner1", "eth_getBlockByNumber", "latest", False) == {"number": "0x2a", "peers": ["a" * 64] * 40}
    assert fake.requests == [{"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", False]}]


def test_head_number_and_block_hash_read_geth_hex(node) -> None:
    def answer(request: dict) -> dict:
        if request["method"] == "eth_blockNumber":
            return {"jsonrpc": "2.0", "id": 1, "result": "0x1f4"}
        assert request["params"] == ["0x1f4", False]
        return {"jsonrpc": "2.0", "id": 1, "result": {"hash": "0xabc"}}

    node(answer)
    assert chain.head_number("pi1") == 500
    assert chain.block_hash("pi1", 500) == "0xabc"


def test_an_error_answer_raises_with_the_nodes_message_or_gives_none(node) -> None:
    error = {"code": -32000, "message": "etherbase must be explicitly specified"}
    node(lambda r: {"jsonrpc": "2.0", "id": 1, "error": error})
    assert chain.rpc("pi1", "eth_coinbase", check=False) is None
    with pytest.raises(lab.LabError, match=r"pi1: eth_coinbase.*etherbase must be explicitly specified"):
        chain.rpc("pi1", "eth_coinbase")


def test_a_node_without_its_socket_asks_for_the_pid_once_more_then_fails(node) -> None:
    assert chain.head_number("miner3", check=False) is None
    assert node.pid_requests == [False, True]  # the container may have been re-created: one fresh look, no more
    with pytest.raises(lab.LabError, match="miner3: eth_blockNumber"):
        chain.head_number("miner3")


def test_a_container_that_is_not_running_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain, "container_pid", lambda host, refresh=False: None)
    assert chain.rpc("pi9", "eth_blockNumber", check=False) is None
    with pytest.raises(lab.LabError, match="the container is not running"):
        chain.rpc("pi9", "eth_blockNumber")
