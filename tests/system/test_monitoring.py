"""Monitoring on the lab after site.yml (roles node_exporter and monitoring; the stats host doubles as the monitoring
host): Prometheus scrapes every target over the overlay, and the exporters answer the monitoring host only. The alert a
stopped sealer fires at the lab's webhook sink, and its resolution, are checked with the sealer faults
(test_faults.py), which stop that sealer anyway.
"""

from __future__ import annotations

import json

from heliogrid_testing.chain import eventually
from lab import lab

MONITOR = "hg-stats1"
EXPORTER_PORTS = {"node": 9100, "geth": 6060}


def prometheus(path: str) -> dict:
    program = f"import urllib.request, sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:9090{path}').read().decode())"
    return json.loads(lab.podman_exec(MONITOR, "python3", "-c", program).stdout)


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
