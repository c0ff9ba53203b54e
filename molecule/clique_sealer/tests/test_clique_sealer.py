"""A one-sealer chain: keys private to geth, blocks sealed, RPC off, and a live chain's genesis defended."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path


def attach(host, expression: str):
    """Evaluate a JavaScript expression (no single quotes) in the node's console over its IPC socket."""
    out = host.check_output(f"geth attach --exec 'JSON.stringify({expression})' /var/lib/geth/geth.ipc")
    return json.loads(json.loads(out))


def test_sealer_seals_blocks(host):
    deadline = time.monotonic() + 30
    while attach(host, "eth.blockNumber") < 2 and time.monotonic() < deadline:
        time.sleep(1)
    assert attach(host, "eth.blockNumber") >= 2
    (key,) = host.file("/var/lib/geth/keystore").listdir()
    address = "0x" + key.split("--")[-1]
    assert attach(host, "clique.getSigners()") == [address]
    assert attach(host, 'clique.getSigner(eth.getBlock("latest").hash)') == address


def test_keys_and_password_are_0600_owned_by_geth(host):
    (key,) = host.file("/var/lib/geth/keystore").listdir()
    for path in (f"/var/lib/geth/keystore/{key}", "/var/lib/geth/sealer.password", "/var/lib/geth/geth/nodekey"):
        f = host.file(path)
        assert (f.mode, f.user, f.group) == (0o600, "geth", "geth"), path


def test_unlock_uses_the_password_file_without_insecure_unlock(host):
    command = host.file("/etc/systemd/system/geth.service").content_string
    assert "--mine --miner.etherbase 0x" in command
    assert "--password /var/lib/geth/sealer.password" in command
    assert "allow-insecure-unlock" not in command


def test_no_http_rpc_on_a_sealer_and_p2p_open(host):
    listening = host.socket.get_listening_sockets()
    assert not [s for s in listening if s.endswith(":8545")]
    assert host.socket("tcp://0.0.0.0:30303").is_listening
    # The only local RPC is the IPC socket, reachable by root and geth alone.
    assert host.file("/var/lib/geth").mode == 0o700


def test_a_different_genesis_over_the_live_chain_fails_and_changes_nothing(host):
    before = host.file("/etc/geth/genesis.json").sha256sum
    head_before = attach(host, "eth.blockNumber")
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=str(project / "roles"),
        ANSIBLE_FILTER_PLUGINS=str(project / "plugins" / "filter"),
    )
    result = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(scenario / "converge.yml"),
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
    assert host.file("/etc/geth/genesis.json").sha256sum == before
    assert host.service("geth").is_running
    assert attach(host, "eth.blockNumber") >= head_before
