"""A one-sealer Clique chain and a Pi's client following it over the WireGuard overlay, behind the host firewalls:
roles wireguard, firewall, geth, geth_nodekey, clique_sealer, clique_genesis and geth_client, seen from both nodes.
The genesis guard comes last: it renders another genesis over the live chain (genesis_guard.yml).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import testinfra

from lab.geth_defaults import geth_defaults, geth_release

GETH = "geth-linux-amd64-" + "-".join(geth_release())
ARCHIVE_SHA256 = (Path(os.environ["MOLECULE_GETH_DIR"]) / geth_release()[0] / f"{GETH}.tar.gz.sha256").read_text()[:64]
CHAIN_ID = 4343  # clique_genesis_chain_id and geth_network_id in molecule.yml
DATADIR = geth_defaults()["geth_datadir"]
IPC = f"{DATADIR}/geth.ipc"
NODES = {"sealer": "hg-molecule-gn-sealer", "client": "hg-molecule-gn-client"}
OVERLAY = {"hg-molecule-gn-sealer": "10.77.0.11", "hg-molecule-gn-client": "10.77.0.31"}  # molecule.yml host_vars


@pytest.fixture(scope="module")
def sealer():
    return testinfra.get_host(f"podman://{NODES['sealer']}")


@pytest.fixture(scope="module")
def client():
    return testinfra.get_host(f"podman://{NODES['client']}")


@pytest.fixture(params=list(NODES))
def node(request):
    """Each node in turn: what role geth guarantees holds on the sealer and on the client alike (function scope:
    pytest keeps the file's order, so the genesis guard stays last)."""
    return testinfra.get_host(f"podman://{NODES[request.param]}")


def attach(host, expression: str):
    """Evaluate a JavaScript expression (no single quotes) in the node's console over its IPC socket."""
    return json.loads(json.loads(host.check_output(f"geth attach --exec 'JSON.stringify({expression})' {IPC}")))


def sealer_address(sealer) -> str:
    (key,) = sealer.file(f"{DATADIR}/keystore").listdir()
    return "0x" + key.split("--")[-1]


def wait_for_block(host, number: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (head := attach(host, "eth.blockNumber")) < number and time.monotonic() < deadline:
        time.sleep(1)
    return head


# --- Role geth, on both nodes ---------------------------------------------------------------------------------


def test_archive_on_host_matches_the_pinned_sha256(node):
    archive = node.file(f"/opt/geth/archives/{GETH}.tar.gz")
    assert archive.sha256sum == ARCHIVE_SHA256


def test_stable_path_points_at_the_versioned_binary(node):
    link = node.file("/usr/local/bin/geth")
    assert link.is_symlink
    assert link.linked_to == f"/opt/geth/{GETH}/geth"
    assert f"Version: {geth_release()[0]}-stable" in node.check_output("/usr/local/bin/geth version")


def test_geth_runs_as_its_own_system_user(node):
    service = node.service("geth")
    assert service.is_running
    assert service.is_enabled
    assert node.user("geth").shell == "/usr/sbin/nologin"
    assert node.process.get(comm="geth").user == "geth"


def test_unit_is_hardened(node):
    props = dict(
        line.split("=", 1)
        for line in node.check_output(
            "systemctl show geth -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateTmp -p Restart "
            "-p ReadWritePaths -p StandardOutput"
        ).splitlines()
    )
    assert props == {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "Restart": "on-failure",
        "ReadWritePaths": DATADIR,
        "StandardOutput": "journal",
    }


def test_p2p_listens_on_the_overlay_address_only(node):
    listeners = [s for s in node.socket.get_listening_sockets() if s.endswith(":30303")]
    assert listeners == [f"tcp://{OVERLAY[node.backend.name]}:30303"]
    config = node.file("/etc/geth/config.toml").content_string
    assert 'NetRestrict = ["10.77.0.0/24"]' in config
    assert "NoDiscovery = true" in config
    unit = node.file("/etc/systemd/system/geth.service").content_string
    assert f"--nat extip:{OVERLAY[node.backend.name]}" in unit
    assert "wg-quick@wg0.service" in unit


def test_nodekey_and_data_are_private_to_geth(node):
    nodekey = node.file(f"{DATADIR}/geth/nodekey")
    assert (nodekey.mode, nodekey.user) == (0o600, "geth")
    # The only local RPC on a sealer is the IPC socket in here, reachable by root and geth alone.
    assert node.file(DATADIR).mode == 0o700
    config = node.file("/etc/geth/config.toml")
    assert (config.mode, config.user, config.group) == (0o640, "root", "geth")


def test_geth_logs_to_the_journal(node):
    # geth's own lines (its SyslogIdentifier, not systemd's lines about the unit), from its start on.
    log = node.check_output("journalctl _SYSTEMD_UNIT=geth.service SYSLOG_IDENTIFIER=geth --no-pager -o cat")
    assert re.search(r"Starting peer-to-peer node\s+instance=Geth/v1\.13\.15-stable", log), log[:2000]
    assert re.search(rf"IPC endpoint opened\s+url={re.escape(IPC)}", log), log[:2000]


# --- The overlay and the firewall: roles wireguard and firewall ----------------------------------------------


def test_hub_and_spoke_complete_a_handshake(sealer, client):
    """The client (a spoke) dials the sealer (a hub) at its underlay address; each holds only the other's key."""
    for host, peer in ((client, sealer), (sealer, client)):
        public = peer.check_output("wg show wg0 public-key")
        handshakes = dict(line.split() for line in host.check_output("wg show wg0 latest-handshakes").splitlines())
        assert list(handshakes) == [public]
        deadline = time.monotonic() + 30
        while int(handshakes[public]) == 0 and time.monotonic() < deadline:
            time.sleep(1)
            handshakes = dict(line.split() for line in host.check_output("wg show wg0 latest-handshakes").splitlines())
        assert int(handshakes[public]) > 0, f"{host.backend.name}: no handshake with {peer.backend.name}"
    assert "persistent keepalive: every 25 seconds" in client.check_output("wg show wg0")


def test_private_keys_stay_on_their_node_in_one_0600_file(node):
    key = node.file("/etc/wireguard/wg0.key")
    assert (key.mode, key.user) == (0o600, "root")
    private = key.content_string.strip()
    for path in node.check_output("find /etc/wireguard -type f").split():
        if path != "/etc/wireguard/wg0.key":
            assert private not in node.file(path).content_string, path
    assert node.file("/etc/wireguard").mode == 0o700


def test_p2p_crosses_the_tunnel_and_is_refused_beside_it(sealer, client):
    peers = "admin.peers.map(function (p) { return p.network.remoteAddress; })"
    deadline = time.monotonic() + 60
    while not (remote := attach(client, peers)) and time.monotonic() < deadline:
        time.sleep(2)
    assert remote == ["10.77.0.11:30303"]
    probe = 'python3 -c "import socket,sys; socket.create_connection((sys.argv[1], 30303), timeout=3)" {}'
    assert client.run(probe.format("10.77.0.11")).rc == 0  # through wg0
    underlay = sealer.check_output("ip -4 -o addr show eth0").split()[3].split("/")[0]
    assert client.run(probe.format(underlay)).rc != 0  # nothing of geth beside the tunnel


def test_firewall_drops_inbound_but_what_it_names(node):
    ruleset = node.check_output("nft list table inet heliogrid")
    assert "policy drop" in ruleset
    assert 'iifname "wg0" tcp dport 30303 accept' in ruleset
    assert "udp dport 51820 accept" in ruleset
    assert 'ip daddr 10.77.0.0/24 iifname != "wg0"' in ruleset
    assert node.service("nftables").is_enabled


# --- The sealer: roles clique_sealer, clique_genesis and geth sealing -----------------------------------------


def test_sealer_seals_blocks(sealer):
    assert wait_for_block(sealer, 2, timeout=30) >= 2
    address = sealer_address(sealer)
    assert attach(sealer, "clique.getSigners()") == [address]
    assert attach(sealer, 'clique.getSigner(eth.getBlock("latest").hash)') == address


def test_keys_and_password_are_0600_owned_by_geth(sealer):
    (key,) = sealer.file(f"{DATADIR}/keystore").listdir()
    for path in (f"{DATADIR}/keystore/{key}", f"{DATADIR}/sealer.password", f"{DATADIR}/geth/nodekey"):
        f = sealer.file(path)
        assert (f.mode, f.user, f.group) == (0o600, "geth", "geth"), path


def test_unlock_uses_the_password_file_without_insecure_unlock(sealer):
    command = sealer.file("/etc/systemd/system/geth.service").content_string
    assert "--mine --miner.etherbase 0x" in command
    assert f"--password {DATADIR}/sealer.password" in command
    assert "allow-insecure-unlock" not in command


def test_no_http_rpc_on_a_sealer(sealer):
    assert not [s for s in sealer.socket.get_listening_sockets() if s.endswith(":8545")]
    assert 'HTTPHost = ""' in sealer.file("/etc/geth/config.toml").content_string


# --- The client: role geth_client (role geth as a Pi runs it) --------------------------------------------------


def test_client_dials_only_the_sealer_and_discovers_nothing(client, sealer):
    config = client.file("/etc/geth/config.toml").content_string
    enode = attach(sealer, "admin.nodeInfo.enode").split("?")[0].split("@")[0]
    assert "NoDiscovery = true" in config
    assert enode in config  # the sealer's identity, derived from its nodekey before either node started
    peer_ids = "admin.peers.map(function (p) { return p.id; })"
    deadline = time.monotonic() + 60
    while not (peers := attach(client, peer_ids)) and time.monotonic() < deadline:
        time.sleep(2)
    assert peers == [attach(sealer, "admin.nodeInfo.id")]


def test_client_follows_the_chain_the_sealer_seals(client, sealer):
    assert attach(client, "eth.getBlock(0).hash") == attach(sealer, "eth.getBlock(0).hash")
    assert attach(client, "eth.chainId()") == attach(sealer, "eth.chainId()")
    # A block sealed after the client joined reaches it: same hash on both nodes, signed by the sealer.
    target = attach(sealer, "eth.blockNumber") + 1
    assert wait_for_block(client, target, timeout=60) >= target
    assert attach(client, f"eth.getBlock({target}).hash") == attach(sealer, f"eth.getBlock({target}).hash")
    assert attach(client, f"clique.getSigner(eth.getBlock({target}).hash)") == sealer_address(sealer)


def test_client_serves_rpc_on_loopback_only(client):
    listeners = [s for s in client.socket.get_listening_sockets() if s.endswith(":8545")]
    assert listeners == ["tcp://127.0.0.1:8545"]


def test_client_rpc_answers_with_the_chain_id(client):
    out = client.check_output(
        "python3 -c \"import json,urllib.request as u; r=u.urlopen(u.Request('http://127.0.0.1:8545', "
        "json.dumps({'jsonrpc':'2.0','id':1,'method':'eth_chainId','params':[]}).encode(), "
        "{'Content-Type':'application/json'})); print(json.load(r)['result'])\""
    )
    assert int(out, 16) == CHAIN_ID


def test_client_config_toml_carries_the_settings_not_the_command_line(client):
    config = client.file("/etc/geth/config.toml").content_string
    assert f"NetworkId = {CHAIN_ID}" in config
    assert 'HTTPHost = "127.0.0.1"' in config
    assert "BootstrapNodes = []" in config
    assert "--networkid" not in client.file("/etc/systemd/system/geth.service").content_string


def test_client_runs_with_the_pi_sized_cache_and_does_not_seal(client):
    command = client.check_output("systemctl show geth -p ExecStart")
    assert "--cache 256" in command
    assert "--mine" not in command
    assert client.service("geth").is_running


# --- Last: the genesis guard, over the live chain ----------------------------------------------------------------


def test_a_different_genesis_over_the_live_chain_fails_and_changes_nothing(sealer, client):
    before = {name: host.file("/etc/geth/genesis.json").sha256sum for name, host in (("s", sealer), ("c", client))}
    head_before = attach(sealer, "eth.blockNumber")
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=str(project / "roles"),
        ANSIBLE_FILTER_PLUGINS=str(project / "plugins" / "filter"),
        ANSIBLE_TEST_PLUGINS=str(project / "plugins" / "test"),
    )
    result = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(scenario / "genesis_guard.yml"),
            "-e",
            "clique_genesis_chain_id=9999",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    output = " ".join((result.stdout + result.stderr).split())  # failures go to stderr; YAML wraps lines
    assert "initialised from a different genesis: chain id 4343 -> 9999" in output, output[-2000:]
    assert "Nothing was changed" in output
    # The play fails on the sealer, its only host, before anything is written there.
    failed = rf"^{NODES['sealer']}\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=1"
    recap = re.search(failed, result.stdout, re.MULTILINE)
    assert recap, result.stdout[-2000:]
    assert recap[1] == "0", recap[0]
    after = {name: host.file("/etc/geth/genesis.json").sha256sum for name, host in (("s", sealer), ("c", client))}
    assert after == before
    assert sealer.service("geth").is_running
    assert client.service("geth").is_running
    assert attach(sealer, "eth.blockNumber") >= head_before
