"""Roles node_exporter and monitoring: what an operator relies on after converge. Services run, every listener is on
loopback only (Alertmanager's cluster port is off), Prometheus has loaded the HelioGrid rules (promtool agrees)
and scrapes node_exporter, and the always-firing test rule reaches the webhook sink's file through Alertmanager.
No geth runs here: the clique exporter answers and says so (heliogrid_clique_up 0)."""

from __future__ import annotations

import json
import time

import pytest

SERVICES = [
    "prometheus",
    "prometheus-alertmanager",
    "prometheus-node-exporter",
    "heliogrid-clique-exporter",
    "heliogrid-webhook-sink",
]
# Port -> who listens there, each on 127.0.0.1 only (no overlay address in the scenario).
PORTS = {9090: "prometheus", 9093: "alertmanager", 9100: "node_exporter", 9730: "clique exporter", 9095: "sink"}
SINK_FILE = "/var/lib/heliogrid-webhook-sink/alerts.jsonl"


def get(host, url: str) -> str:
    """The body at `url`, fetched inside the container (the listeners are on its loopback)."""
    program = (
        f"import urllib.request, sys; sys.stdout.write(urllib.request.urlopen('{url}', timeout=10).read().decode())"
    )
    return host.check_output(f'python3 -c "{program}"')


def get_json(host, url: str) -> dict:
    return json.loads(get(host, url))


def wait_for(what: str, check, timeout: float = 90, interval: float = 2):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout:.0f} s")
        time.sleep(interval)


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_runs_and_starts_at_boot(host, service: str) -> None:
    unit = host.service(service)
    assert unit.is_running, host.run(f"journalctl -u {service} --no-pager -n 30").stdout
    assert unit.is_enabled


def test_every_listener_is_on_loopback_only(host) -> None:
    listening = host.socket.get_listening_sockets()
    tcp = [s for s in listening if s.startswith("tcp://")]
    for port, who in PORTS.items():
        assert f"tcp://127.0.0.1:{port}" in tcp, f"{who} does not listen on 127.0.0.1:{port}: {tcp}"
    ours = [s for s in tcp if int(s.rsplit(":", 1)[1]) in PORTS or s.endswith(":9094")]
    assert sorted(ours) == sorted(f"tcp://127.0.0.1:{p}" for p in PORTS), f"listening elsewhere too: {ours}"


def test_promtool_accepts_the_installed_rules_and_configuration(host) -> None:
    rules = host.run("promtool check rules /etc/prometheus/heliogrid.rules.yml")
    assert rules.rc == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 9 rules found" in rules.stdout
    config = host.run("promtool check config /etc/prometheus/prometheus.yml")
    assert config.rc == 0, config.stdout + config.stderr


def test_prometheus_has_loaded_every_heliogrid_alert(host) -> None:
    groups = get_json(host, "http://127.0.0.1:9090/api/v1/rules")["data"]["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert names == {
        "HelioGridSealerMissedTurns",
        "HelioGridHeadStalled",
        "HelioGridSignerExporterDown",
        "HelioGridPiBehind",
        "HelioGridPiUnreachable",
        "HelioGridReportUnconfirmed",
        "HelioGridMeterGasLow",
        "HelioGridDiskFull",
        "HelioGridTestAlwaysFiring",
    }


def test_node_exporter_is_scraped_and_up(host) -> None:
    def node_up():
        targets = get_json(host, "http://127.0.0.1:9090/api/v1/targets")["data"]["activeTargets"]
        return [t for t in targets if t["labels"]["job"] == "node" and t["health"] == "up"]

    (target,) = wait_for("the node job's target up", node_up)
    assert target["labels"]["host"] == "hg-molecule-monitoring"


def test_the_clique_exporter_says_it_cannot_reach_a_node(host) -> None:
    assert "heliogrid_clique_up 0" in get(host, "http://127.0.0.1:9730/metrics").splitlines()


def test_the_test_alert_reaches_the_webhook_sink(host) -> None:
    def received():
        lines = host.run(f"cat {SINK_FILE}").stdout.splitlines()
        notes = [json.loads(line)["notification"] for line in lines]
        return [a for n in notes for a in n["alerts"] if a["labels"]["alertname"] == "HelioGridTestAlwaysFiring"]

    alerts = wait_for("HelioGridTestAlwaysFiring in the sink's file", received)
    assert alerts[0]["status"] == "firing"
    assert host.file(SINK_FILE).user == "prometheus"
    assert not host.file(SINK_FILE).mode & 0o007, "the alerts file must not be readable by others"


def test_the_operator_page_lists_the_scraped_host(host) -> None:
    def listed():
        page = get(host, "http://127.0.0.1:9090/consoles/heliogrid.html")
        return page if "<td>hg-molecule-monitoring</td>" in page else None

    page = wait_for("the host on /consoles/heliogrid.html", listed, timeout=30)
    assert "HelioGrid: operations" in page
    assert "no data from the clique exporter" in page  # no geth in the scenario
