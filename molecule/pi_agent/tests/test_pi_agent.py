"""Role pi_agent: what the Pi's operator relies on after converge (no node, no contracts on chain here).

The scenario runs on trixie amd64; the lab Pi's arm64 platform is checked on lab pi1 by tests/system/test_arm64_pi.py.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from heliogrid_testing.agent_unit import HARDENING, UNIT, USER, VENV, unit_settings
from heliogrid_testing.venv_lock import unexpected

AGENT = f"{VENV}/bin/heliogrid-agent"
CONFIG = "/etc/heliogrid-agent/agent.toml"


def metric(host, name: str) -> float:
    """One sample of the agent's Prometheus metrics, read where they are served: the Pi's loopback."""
    body = host.check_output(
        "python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:9720/metrics').read().decode())\""
    )
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def lan_address(host) -> str:
    """The container's address on its network, as the host (a LAN neighbour) reaches it."""
    name = host.backend.name
    out = subprocess.run(
        ["podman", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out.stdout.strip()


def test_venv_matches_the_hosts_platform(host):
    """The venv's Python and every binary wheel in it are built for the host's own architecture (on a Pi, aarch64:
    tests/system/test_arm64_pi.py checks that on lab pi1)."""
    machine = host.check_output("uname -m")
    platform = host.check_output(f'{VENV}/bin/python -c "import sysconfig; print(sysconfig.get_platform())"')
    assert platform == f"linux-{machine}"
    tags = host.check_output(f"sed -n 's/^Tag: //p' {VENV}/lib/python3*/site-packages/*.dist-info/WHEEL").split()
    binary = [tag for tag in tags if not tag.endswith("-any")]
    assert binary, "no binary wheel in the venv"
    assert all(tag.endswith(f"_{machine}") for tag in binary), (machine, binary)


def test_venv_holds_the_pinned_package(host):
    version = host.check_output(
        f"{VENV}/bin/python -c \"import importlib.metadata as m; print(m.version('heliogrid-agent'))\""
    )
    assert version == "0.1.0"
    assert host.file(VENV).user == "root"


def test_venv_holds_exactly_what_the_lock_pins(host):
    """pip installed with --require-hashes from the lock and the agent wheel's digest: nothing else is in the venv."""
    assert unexpected(host, VENV, "files/pi_agent/requirements.lock", "heliogrid-agent", "0.1.0") == {}
    assert "--hash=sha256:" in host.file("/opt/heliogrid-agent/requirements.txt").content_string


def test_key_files_are_private_to_the_agent_user(host):
    for path in ("/var/lib/heliogrid-agent/keystore.json", "/etc/heliogrid-agent/password"):
        f = host.file(path)
        assert (f.mode, f.user, f.group) == (0o600, USER, USER), path
    state = host.file("/var/lib/heliogrid-agent")
    assert (state.mode, state.user) == (0o700, USER)
    assert host.user(USER).shell == "/usr/sbin/nologin"


def test_config_is_valid_and_readable_by_the_agent_group_only(host):
    config = host.file(CONFIG)
    assert (config.mode, config.user, config.group) == (0o640, "root", USER)
    record = host.file("/etc/heliogrid-agent/contracts.json")
    assert (record.mode, record.group) == (0o640, USER)
    out = host.check_output(f"runuser -u {USER} -- {AGENT} -c {CONFIG} check-config")
    assert "valid (simulated sensor, 1000 W)" in out


def test_agent_runs_as_its_user_and_starts_at_boot(host):
    service = host.service("heliogrid-agent")
    assert service.is_running
    assert service.is_enabled
    assert host.process.get(comm="heliogrid-agent").user == USER


def test_unit_is_hardened_and_ordered_after_geth(host):
    # The unit as installed...
    unit = unit_settings(host.file(UNIT).content_string)
    assert {key: unit.get(key) for key in HARDENING} == HARDENING
    # ...is what systemd runs: no drop-in overrides it, and the sandbox is in force (amd64 builds mount namespaces).
    props = dict(
        line.split("=", 1)
        for line in host.check_output(
            "systemctl show heliogrid-agent -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateTmp "
            "-p PrivateDevices -p Restart -p ReadWritePaths -p StandardOutput -p After -p Wants -p DropInPaths "
            "-p MainPID"
        ).splitlines()
    )
    assert "geth.service" in props.pop("After").split()
    assert "geth.service" in props.pop("Wants").split()
    pid = props.pop("MainPID")
    assert props == {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "Restart": "on-failure",
        "ReadWritePaths": "/var/lib/heliogrid-agent",
        "StandardOutput": "journal",
        "DropInPaths": "",
    }
    # The running agent: no new privileges and no capabilities.
    status = dict(line.split(":", 1) for line in host.file(f"/proc/{pid}/status").content_string.splitlines())
    assert {key: status[key].strip() for key in ("NoNewPrivs", "CapEff", "CapBnd")} == {
        "NoNewPrivs": "1",
        "CapEff": "0000000000000000",
        "CapBnd": "0000000000000000",
    }


def test_agent_keeps_measuring_with_its_node_unreachable(host):
    first = metric(host, "heliogrid_agent_samples_total")
    time.sleep(3)  # interval_seconds is 1 in this scenario
    assert metric(host, "heliogrid_agent_samples_total") >= first + 2
    assert metric(host, "heliogrid_agent_node_up") == 0
    # An unreachable node is expected here, not an error: nothing at error priority in the journal.
    assert host.check_output("journalctl -u heliogrid-agent -p err --no-pager -q -o cat") == ""


def test_ui_answers_the_lan_with_the_meter_key(host):
    address = lan_address(host)
    with urllib.request.urlopen(f"http://{address}:8080/api/status", timeout=10) as response:
        status = json.load(response)
    assert status["address"] == host.check_output(f"{AGENT} address --keystore /var/lib/heliogrid-agent/keystore.json")
    assert status["capacity_watts"] == 1000
    assert status["node"]["up"] is False


def test_ui_login_code_is_private_to_the_agent_user_and_a_post_without_it_is_refused(host):
    secret = host.file("/var/lib/heliogrid-agent/ui-secret")
    assert (secret.user, secret.mode) == (USER, 0o600)
    request = urllib.request.Request(
        f"http://{lan_address(host)}:8080/api/selling",
        json.dumps({"paused": True}).encode(),
        {"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    # The journal names the file, never the code.
    code = host.check_output("cat /var/lib/heliogrid-agent/ui-secret").replace("-", "")
    assert code not in host.check_output("journalctl -u heliogrid-agent --no-pager -q -o cat").replace("-", "")


def test_ui_listens_on_the_lan_address_and_metrics_on_loopback_only(host):
    sockets = host.socket.get_listening_sockets()
    assert [s for s in sockets if s.endswith(":8080")] == [f"tcp://{lan_address(host)}:8080"]
    assert [s for s in sockets if s.endswith(":9720")] == ["tcp://127.0.0.1:9720"]
