"""Monitoring on the lab after site.yml (roles node_exporter and monitoring; the stats host doubles as the monitoring
host): Prometheus scrapes every target over the overlay, the exporters answer the monitoring host only, and a stopped
sealer fires HelioGridSealerMissedTurns at the lab's webhook sink, which resolves once the sealer seals again.
"""

from __future__ import annotations

import json
import time

import pytest

from heliogrid_testing.chain import eventually
from lab import lab

MONITOR = "hg-stats1"
SINK_FILE = "/var/lib/heliogrid-webhook-sink/alerts.jsonl"
EXPORTER_PORTS = {"node": 9100, "geth": 6060}
FIRE_WITHIN = 300  # s: 3 missed turns (3 x 3 periods of 5 s), a scrape, an evaluation, Alertmanager's group_wait
RESOLVE_WITHIN = 300  # s: the sealer's next turn, a scrape, an evaluation, Alertmanager's group_interval


def prometheus(path: str) -> dict:
    program = f"import urllib.request, sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:9090{path}').read().decode())"
    return json.loads(lab.podman_exec(MONITOR, "python3", "-c", program).stdout)


def notifications() -> list[dict]:
    lines = lab.podman_exec(MONITOR, "cat", SINK_FILE, check=False).stdout.splitlines()
    return [json.loads(line)["notification"] for line in lines]


def opens(container: str, address: str, port: int) -> bool:
    program = f"import socket; socket.create_connection(('{address}', {port}), timeout=3).close()"
    return lab.podman_exec(container, "python3", "-c", program, check=False).returncode == 0


def test_every_target_is_scraped_and_up(site) -> None:
    def down() -> list[str]:
        targets = prometheus("/api/v1/targets")["data"]["activeTargets"]
        return [f"{t['labels']['job']}/{t['labels']['host']}: {t['lastError']}" for t in targets if t["health"] != "up"]

    nodes = lab.inventory_hosts("miners") + lab.inventory_hosts("stats") + lab.inventory_hosts("pis")
    assert eventually(lambda: not down(), timeout=120), f"targets not up: {down()}"
    jobs = {(t["labels"]["job"], t["labels"]["host"]) for t in prometheus("/api/v1/targets")["data"]["activeTargets"]}
    assert {(job, host) for job in EXPORTER_PORTS for host in nodes} <= jobs
    assert {("pi_agent", pi) for pi in lab.inventory_hosts("pis")} <= jobs


def test_the_exporters_answer_the_monitoring_host_and_not_another_node(site) -> None:
    hostvars = lab.hostvars()
    target = hostvars["miner2"]["overlay_address"]
    for job, port in EXPORTER_PORTS.items():
        assert opens(MONITOR, target, port), f"the monitoring host cannot reach miner2's {job} port {port}"
        assert not opens("hg-miner1", target, port), f"miner1 reaches miner2's {job} port {port} on the overlay"


def test_a_stopped_sealer_fires_missed_turns_at_the_webhook_and_it_resolves(site) -> None:
    def alerts(status: str) -> list[dict]:
        return [
            a
            for n in notifications()
            for a in n["alerts"]
            if a["labels"]["alertname"] == "HelioGridSealerMissedTurns" and a["status"] == status
        ]

    before = len(alerts("firing")), len(alerts("resolved"))
    lab.podman_exec("hg-miner3", "systemctl", "stop", "geth")
    stopped = time.monotonic()
    try:
        fired = eventually(lambda: len(alerts("firing")) > before[0], timeout=FIRE_WITHIN, interval=5)
        print(f"FIGURE: missed-turns alert at the webhook {time.monotonic() - stopped:.0f} s after miner3 stopped")
        assert fired, f"no HelioGridSealerMissedTurns at the webhook within {FIRE_WITHIN} s of stopping miner3"
    finally:
        lab.podman_exec("hg-miner3", "systemctl", "start", "geth")
    started = time.monotonic()
    resolved = eventually(lambda: len(alerts("resolved")) > before[1], timeout=RESOLVE_WITHIN, interval=5)
    print(f"FIGURE: resolved at the webhook {time.monotonic() - started:.0f} s after miner3 started")
    if not resolved:
        pytest.fail(f"HelioGridSealerMissedTurns did not resolve within {RESOLVE_WITHIN} s of starting miner3")
