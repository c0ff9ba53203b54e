"""Role geth, non-sealing node: what an operator relies on after converge."""

from __future__ import annotations

import os
from pathlib import Path

GETH = "geth-linux-amd64-1.13.15-c5ba367e"
ARCHIVE_SHA256 = Path(os.environ["MOLECULE_GETH_SHA256_FILE"]).read_text().split()[0]


def test_archive_on_host_matches_the_pinned_sha256(host):
    archive = host.file(f"/opt/geth/archives/{GETH}.tar.gz")
    assert archive.sha256sum == ARCHIVE_SHA256


def test_stable_path_points_at_the_versioned_binary(host):
    link = host.file("/usr/local/bin/geth")
    assert link.is_symlink
    assert link.linked_to == f"/opt/geth/{GETH}/geth"
    assert "Version: 1.13.15-stable" in host.check_output("/usr/local/bin/geth version")


def test_geth_runs_as_its_own_system_user(host):
    service = host.service("geth")
    assert service.is_running
    assert service.is_enabled
    assert host.user("geth").shell == "/usr/sbin/nologin"
    assert host.process.get(comm="geth").user == "geth"


def test_unit_is_hardened(host):
    props = dict(
        line.split("=", 1)
        for line in host.check_output(
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
        "ReadWritePaths": "/var/lib/geth",
        "StandardOutput": "journal",
    }


def test_rpc_listens_on_loopback_only(host):
    listeners = [s for s in host.socket.get_listening_sockets() if s.endswith(":8545")]
    assert listeners == ["tcp://127.0.0.1:8545"]


def test_p2p_listens_on_all_addresses(host):
    assert host.socket("tcp://0.0.0.0:30303").is_listening


def test_rpc_answers_with_the_chain_id(host):
    out = host.check_output(
        "python3 -c \"import json,urllib.request as u; r=u.urlopen(u.Request('http://127.0.0.1:8545', "
        "json.dumps({'jsonrpc':'2.0','id':1,'method':'eth_chainId','params':[]}).encode(), "
        "{'Content-Type':'application/json'})); print(json.load(r)['result'])\""
    )
    assert int(out, 16) == 4242


def test_nodekey_and_data_are_private_to_geth(host):
    nodekey = host.file("/var/lib/geth/geth/nodekey")
    assert nodekey.mode == 0o600
    assert nodekey.user == "geth"
    assert host.file("/var/lib/geth").mode == 0o700
    config = host.file("/etc/geth/config.toml")
    assert (config.mode, config.user, config.group) == (0o640, "root", "geth")


def test_config_toml_carries_the_settings_not_the_command_line(host):
    config = host.file("/etc/geth/config.toml").content_string
    assert "NetworkId = 4242" in config
    assert 'HTTPHost = "127.0.0.1"' in config
    assert "BootstrapNodes = []" in config
    assert "--networkid" not in host.file("/etc/systemd/system/geth.service").content_string


def test_geth_logs_to_the_journal(host):
    assert "geth" in host.check_output("journalctl -u geth -n 50 --no-pager -o cat")
