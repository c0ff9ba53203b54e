"""Role stats_app: what an operator relies on after converge, seen from the network as a browser or geth would.

Two instances: `hg-molecule-stats-http` (plain HTTP, the lab's setting, ethstats at /api on the public server) and
`hg-molecule-stats-tls` (a self-signed certificate from prepare.yml, and ethstats only on the container's own network
address, standing in for the WireGuard address; the public side is reached through the container's other addresses).
No geth runs in the scenario, so the index stays empty and /healthz must say the node is unreachable; everything
else (page, API, ethstats endpoint) works without a node. converge.yml gives two made-up nodes a credential each.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
import testinfra
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from heliogrid_testing.venv_lock import unexpected

STATE = Path(os.environ["MOLECULE_STATS_STATE_DIR"])
RECORD = json.loads((STATE / "contracts.json").read_text())
NODE_A, NODE_B = "molecule-node-a", "molecule-node-b"  # the nodes converge.yml gives a credential
HTTP, TLS = "hg-molecule-stats-http", "hg-molecule-stats-tls"
TLS_NAME = "stats.heliogrid.test"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "Restart": "on-failure",
    "ReadWritePaths": "/var/lib/heliogrid-stats",
    "StandardOutput": "journal",
    "User": "heliogrid-stats",
}


def address(container: str) -> str:
    """The container's address on its podman network: where other machines reach the stats host."""
    out = subprocess.run(
        ["podman", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out, f"{container} has no network address"
    return out[0]


def get(
    url_host: str, path: str, *, port: int = 80, tls: ssl.SSLContext | None = None
) -> tuple[int, dict[str, str], bytes]:
    if tls is None:
        conn: http.client.HTTPConnection = http.client.HTTPConnection(url_host, port, timeout=10)
    else:
        conn = http.client.HTTPSConnection(url_host, port, timeout=10, context=tls)
    try:
        conn.request("GET", path, headers={"Host": TLS_NAME if tls else url_host})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def trust_the_test_certificate() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(STATE / "stats.crt"))
    context.check_hostname = False  # the request goes to the container's address; the name is checked below
    return context


def hello(node_id: str, secret: str) -> str:
    """The first message geth 1.13's reporter sends (ethstats.go login)."""
    info = {
        "name": node_id,
        "node": "Geth/v1.13.14-stable/linux-amd64/go1.21.9",
        "port": 30303,
        "net": "4242",
        "protocol": "eth/68",
        "api": "No",
        "os": "linux",
        "os_v": "amd64",
        "client": "0.1.1",
        "canUpdateHistory": True,
    }
    return json.dumps({"emit": ["hello", {"id": node_id, "info": info, "secret": secret}]})


@pytest.fixture(scope="module")
def http_host():
    return testinfra.get_host(f"podman://{HTTP}")


@pytest.fixture(scope="module")
def tls_host():
    return testinfra.get_host(f"podman://{TLS}")


@pytest.fixture(scope="module")
def http_ip() -> str:
    return address(HTTP)


@pytest.fixture(scope="module")
def tls_ip() -> str:
    return address(TLS)


def secret(node: str) -> str:
    """The node's secret, generated on the controller by converge.yml (never printed: tests compare or send it)."""
    return (STATE / "ethstats" / f"{node}.secret").read_text().strip()


def refused_code(url: str, message: str, **options) -> int:
    """Send `message` first; the server must close the socket without "ready". Returns the close code."""
    with connect(url, open_timeout=10, **options) as ws:
        ws.send(message)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def get_inside(host, port: int, path: str) -> tuple[int, str]:
    """(status, Location) of a GET made inside the container, to 127.0.0.1: the public side, seen from an address
    that is not the ethstats-only one."""
    script = (
        "import http.client, sys; c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=10); "
        "c.request('GET', sys.argv[2]); r = c.getresponse(); print(r.status, r.getheader('Location') or '')"
    )
    status, _, location = host.check_output("python3 -c %s %s %s", script, str(port), path).partition(" ")
    return int(status), location.strip()


# --- HTTP instance: the page, the API and the ethstats endpoint through nginx ---------------------------


def test_page_is_served_through_nginx_on_port_80(http_ip):
    status, headers, body = get(http_ip, "/")
    assert status == 200
    page = body.decode()
    assert "<title>HelioGrid stats</title>" in page
    assert RECORD["market"]["address"] in page  # the deployment record the role copied
    assert headers["server"] == "nginx"  # server_tokens off: no version
    assert "frame-ancestors 'none'" in headers["content-security-policy"]  # set by the app behind the proxy


def test_json_api_is_proxied_and_reports_the_recorded_chain(http_ip):
    status, headers, body = get(http_ip, "/api/v1/summary")
    assert status == 200
    assert headers["content-type"] == "application/json"
    summary = json.loads(body)
    assert summary["network"]["chain_id"] == RECORD["chainId"]
    assert summary["energy"]["meters"] == 0


def test_healthz_says_the_node_is_unreachable_without_geth_and_the_journal_says_why(http_host, http_ip):
    status, _, body = get(http_ip, "/healthz")
    health = json.loads(body)
    assert status == 503
    assert health["ok"] is False
    assert health["head"] is None
    assert health["last_error"] == "the indexer cannot follow the node; the service's log says why"
    assert b"8545" not in body  # the exception stays in the journal: it names hosts and ports
    log = http_host.check_output("journalctl -u heliogrid-stats -n 200 --no-pager -o cat")
    assert "8545" in log  # the node it tried: the stats node's loopback RPC


def test_app_listens_on_loopback_only(http_host, http_ip):
    listeners = [s for s in http_host.socket.get_listening_sockets() if s.endswith(":8090")]
    assert listeners == ["tcp://127.0.0.1:8090"]
    with pytest.raises(ConnectionRefusedError):
        get(http_ip, "/", port=8090)


def test_nginx_listens_on_80_and_not_443_without_a_certificate(http_host):
    listening = http_host.socket.get_listening_sockets()
    assert "tcp://0.0.0.0:80" in listening
    assert not [s for s in listening if s.endswith(":443")]
    assert http_host.service("nginx").is_running
    assert http_host.service("nginx").is_enabled


def test_venv_holds_exactly_what_the_lock_pins(http_host):
    """pip installed with --require-hashes from the lock and the app wheel's digest: nothing else is in the venv."""
    venv = "/opt/heliogrid-stats/venv"
    assert unexpected(http_host, venv, "files/stats_app/requirements.lock", "heliogrid-stats", "0.1.0") == {}


def test_unit_is_hardened_and_active(http_host):
    names = " ".join(f"-p {p}" for p in (*HARDENING, "ActiveState", "UnitFileState"))
    shown = http_host.check_output(f"systemctl show heliogrid-stats {names}")
    props = dict(line.split("=", 1) for line in shown.splitlines())
    assert props == {**HARDENING, "ActiveState": "active", "UnitFileState": "enabled"}


def test_app_runs_as_its_own_system_user(http_host):
    assert http_host.user("heliogrid-stats").shell == "/usr/sbin/nologin"
    assert http_host.process.get(comm="heliogrid-stats").user == "heliogrid-stats"


def test_config_is_readable_by_the_app_and_writable_by_root_only(http_host):
    for path in ("/etc/heliogrid-stats/config.toml", "/etc/heliogrid-stats/contracts.json"):
        f = http_host.file(path)
        assert (f.mode, f.user, f.group) == (0o640, "root", "heliogrid-stats"), path
    assert json.loads(http_host.file("/etc/heliogrid-stats/contracts.json").content_string) == RECORD
    assert 'listen_host = "127.0.0.1"' in http_host.file("/etc/heliogrid-stats/config.toml").content_string


def test_index_lives_in_the_private_state_directory(http_host):
    state = http_host.file("/var/lib/heliogrid-stats")
    assert (state.mode, state.user) == (0o700, "heliogrid-stats")
    index = http_host.file("/var/lib/heliogrid-stats/index.sqlite3")
    assert index.exists
    assert index.user == "heliogrid-stats"


def test_credentials_are_digests_the_app_reads_and_only_root_writes(http_host):
    directory = http_host.file("/etc/heliogrid-stats/ethstats.d")
    assert (directory.mode, directory.user, directory.group) == (0o750, "root", "heliogrid-stats")
    assert sorted(directory.listdir()) == [NODE_A, NODE_B]
    for node in (NODE_A, NODE_B):
        assert (STATE / "ethstats" / f"{node}.secret").stat().st_mode & 0o777 == 0o600
        on_host = http_host.file(f"/etc/heliogrid-stats/ethstats.d/{node}")
        assert (on_host.mode, on_host.user, on_host.group) == (0o640, "root", "heliogrid-stats")
        # the secret's digest, not the secret (compared, never printed)
        assert on_host.content_string == "sha256:" + hashlib.sha256(secret(node).encode()).hexdigest()
    assert (
        'ethstats_credentials_dir = "/etc/heliogrid-stats/ethstats.d"'
        in http_host.file("/etc/heliogrid-stats/config.toml").content_string
    )
    assert not http_host.file("/etc/heliogrid-stats/ethstats.secret").exists  # the shared secret of old


def test_ethstats_node_with_its_own_secret_is_listed(http_ip):
    with connect(f"ws://{http_ip}:80/api", open_timeout=10) as ws:
        ws.send(hello(NODE_A, secret(NODE_A)))
        assert json.loads(ws.recv(timeout=10)) == {"emit": ["ready"]}
        status, _, body = get(http_ip, "/api/v1/nodes")
        assert status == 200
        nodes = {n["id"]: n for n in json.loads(body)}
        assert nodes[NODE_A]["online"] is True


def test_ethstats_node_using_another_nodes_name_is_refused(http_ip):
    assert refused_code(f"ws://{http_ip}:80/api", hello(NODE_A, secret(NODE_B))) == 1008


def test_ethstats_name_without_a_credential_is_refused_and_never_listed(http_ip):
    assert refused_code(f"ws://{http_ip}:80/api", hello("molecule-node-c", secret(NODE_A))) == 1008
    _, _, body = get(http_ip, "/api/v1/nodes")
    assert "molecule-node-c" not in {n["id"] for n in json.loads(body)}


def test_refusals_are_logged_with_the_claimed_name_never_the_secret(http_host, http_ip):
    refused_code(f"ws://{http_ip}:80/api", hello(NODE_B, secret(NODE_A)))
    refused_code(f"ws://{http_ip}:80/api", hello("molecule-node-d", secret(NODE_B)))
    log = http_host.check_output("journalctl -u heliogrid-stats -n 500 --no-pager -o cat")
    assert f"node '{NODE_B}' from " in log
    assert "refused: wrong secret" in log
    assert "node 'molecule-node-d' from " in log
    assert "refused: no credential for this name" in log
    assert secret(NODE_A) not in log
    assert secret(NODE_B) not in log


def test_app_logs_to_the_journal(http_host):
    log = http_host.check_output("journalctl -u heliogrid-stats -n 200 --no-pager -o cat")
    assert "Application startup complete" in log


# --- TLS instance: HTTPS with the configured certificate, HTTP redirected, ethstats on its own address only ----


def test_tls_http_redirects_to_https(tls_host):
    assert get_inside(tls_host, 80, "/api/v1/summary?x=1") == (301, "https://127.0.0.1/api/v1/summary?x=1")


def test_tls_serves_the_page_with_the_configured_certificate(tls_ip):
    status, headers, body = get(tls_ip, "/", port=443, tls=trust_the_test_certificate())
    assert status == 200
    assert "<title>HelioGrid stats</title>" in body.decode()
    assert headers["strict-transport-security"] == "max-age=300"
    with socket.create_connection((tls_ip, 443), timeout=10) as sock:
        context = ssl.create_default_context(cafile=str(STATE / "stats.crt"))
        with context.wrap_socket(sock, server_hostname=TLS_NAME) as tls:  # verifies chain and name
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_tls_ethstats_is_served_on_its_own_address(tls_ip):
    with connect(f"ws://{tls_ip}:80/api", open_timeout=10) as ws:
        ws.send(hello(NODE_B, secret(NODE_B)))
        assert json.loads(ws.recv(timeout=10)) == {"emit": ["ready"]}
    assert refused_code(f"ws://{tls_ip}:80/api", hello(NODE_B, secret(NODE_A))) == 1008


def test_tls_ethstats_address_serves_nothing_else(tls_ip):
    for path in ("/", "/api/v1/summary", "/healthz"):
        assert get(tls_ip, path)[0] == 404, path


def test_tls_public_side_answers_api_with_404(tls_host, tls_ip):
    assert get(tls_ip, "/api", port=443, tls=trust_the_test_certificate())[0] == 404
    with pytest.raises(InvalidStatus) as refused:
        connect(f"wss://{tls_ip}:443/api", ssl=trust_the_test_certificate(), open_timeout=10)
    assert refused.value.response.status_code == 404
    assert get_inside(tls_host, 80, "/api") == (404, "")
