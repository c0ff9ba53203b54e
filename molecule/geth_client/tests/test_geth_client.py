"""Role geth_client: the node a Pi runs, seen from the client and from its one peer."""

from __future__ import annotations

import json
import time

import pytest
import testinfra

IPC = "/var/lib/geth/geth.ipc"


@pytest.fixture(scope="module")
def pi():
    return testinfra.get_host("podman://hg-molecule-gc-pi")


@pytest.fixture(scope="module")
def peer():
    return testinfra.get_host("podman://hg-molecule-gc-peer")


def console(node, expression: str):
    return json.loads(json.loads(node.check_output(f"geth attach --exec 'JSON.stringify({expression})' {IPC}")))


def test_client_dials_only_its_static_peer_and_discovers_nothing(pi, peer):
    config = pi.file("/etc/geth/config.toml").content_string
    enode = console(peer, "admin.nodeInfo.enode").split("?")[0].split("@")[0]
    assert "NoDiscovery = true" in config
    assert enode in config  # the peer's identity, derived from its nodekey before either node started
    deadline = time.monotonic() + 60
    while not (peers := console(pi, "admin.peers.map(function (p) { return p.id; })")) and time.monotonic() < deadline:
        time.sleep(2)
    assert peers == [console(peer, "admin.nodeInfo.id")]


def test_client_follows_the_peers_chain(pi, peer):
    genesis = "eth.getBlock(0).hash"
    assert console(pi, genesis) == console(peer, genesis)
    assert console(pi, "eth.chainId()") == console(peer, "eth.chainId()")


def test_client_serves_rpc_on_loopback_only(pi):
    listeners = [s for s in pi.socket.get_listening_sockets() if s.endswith(":8545")]
    assert listeners == ["tcp://127.0.0.1:8545"]


def test_client_runs_with_the_pi_sized_cache_and_does_not_seal(pi):
    command = pi.check_output("systemctl show geth -p ExecStart")
    assert "--cache 256" in command
    assert "--mine" not in command
    assert pi.service("geth").is_running


def test_client_nodekey_is_readable_by_geth_alone(pi):
    key = pi.file("/var/lib/geth/geth/nodekey")
    assert (key.user, key.mode) == ("geth", 0o600)
