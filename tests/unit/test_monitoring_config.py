"""The monitoring configuration as the roles render it: Prometheus scrapes every node on its overlay address (promtool
accepts the file), Alertmanager routes to the one receiver the inventory names (amtool accepts both kinds), and the
nodes' firewall opens the exporters on the overlay to the monitoring host only. promtool and amtool come from
lab/fetch-promtool.sh (`make setup`); molecule/monitoring checks the same files on a running host."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml
from ansible.plugins.filter.core import to_bool

from heliogrid_testing.promtool import tool

ROOT = Path(__file__).resolve().parents[2]
HOSTVARS = {
    "miner1": {"overlay_address": "10.77.0.11"},
    "stats1": {"overlay_address": "10.77.0.21"},
    "pi1": {"overlay_address": "10.77.0.31"},
}


def render(role: str, template: str, **overrides: object) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROOT / "roles" / role / "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
    )
    env.filters.update(bool=to_bool, to_json=json.dumps)
    env.tests["search"] = lambda value, pattern: re.search(pattern, value) is not None
    variables = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    variables.update(ansible_managed="Ansible managed", **overrides)
    return env.get_template(template).render(**variables)


def prometheus_config(**overrides: object) -> dict:
    scraped = {
        "monitoring_node_exporter_hosts": ["miner1", "stats1", "pi1"],
        "monitoring_geth_hosts": ["miner1", "stats1", "pi1"],
        "monitoring_agent_hosts": ["pi1"],
    }
    text = render(
        "monitoring",
        "prometheus.yml.j2",
        **{"hostvars": HOSTVARS, "inventory_hostname": "stats1", **scraped, **overrides},
    )
    return yaml.safe_load(text)


def targets(config: dict, job: str) -> dict[str, str]:
    (scrape,) = [s for s in config["scrape_configs"] if s["job_name"] == job]
    return {c["labels"]["host"]: c["targets"][0] for c in scrape["static_configs"]}


def test_every_node_is_scraped_on_its_overlay_address() -> None:
    config = prometheus_config()
    assert targets(config, "node") == {
        "miner1": "10.77.0.11:9100",
        "stats1": "10.77.0.21:9100",
        "pi1": "10.77.0.31:9100",
    }
    assert targets(config, "geth")["miner1"] == "10.77.0.11:6060"
    assert targets(config, "pi_agent") == {"pi1": "10.77.0.31:9720"}
    assert targets(config, "clique") == {"stats1": "127.0.0.1:9730"}


def test_geth_is_scraped_at_its_prometheus_path() -> None:
    (geth,) = [s for s in prometheus_config()["scrape_configs"] if s["job_name"] == "geth"]
    assert geth["metrics_path"] == "/debug/metrics/prometheus"


def test_a_host_without_an_overlay_address_is_scraped_on_loopback() -> None:
    lonely = ["lonely"]
    config = prometheus_config(
        hostvars={"lonely": {}},
        monitoring_node_exporter_hosts=lonely,
        monitoring_geth_hosts=lonely,
        monitoring_agent_hosts=lonely,
    )
    assert targets(config, "node") == {"lonely": "127.0.0.1:9100"}


def test_no_agent_hosts_means_no_agent_job() -> None:
    jobs = [s["job_name"] for s in prometheus_config(monitoring_agent_hosts=[])["scrape_configs"]]
    assert "pi_agent" not in jobs


def test_promtool_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    rules = tmp_path / "heliogrid.rules.yml"
    rules.write_text("groups: []\n")
    config = prometheus_config()
    config["rule_files"] = [str(rules)]  # the host's path is /etc/prometheus/heliogrid.rules.yml
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [str(tool()), "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def amtool_check(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    (tmp_path / "alertmanager.yml").write_text(text)
    amtool = tool("amtool")
    return subprocess.run(
        [str(amtool), "check-config", "alertmanager.yml"], cwd=tmp_path, capture_output=True, text=True
    )


def test_alerts_go_to_the_webhook_the_inventory_names(tmp_path: Path) -> None:
    text = render("monitoring", "alertmanager.yml.j2", monitoring_alert_webhook_url="http://127.0.0.1:9095/")
    result = amtool_check(tmp_path, text)
    assert result.returncode == 0, result.stdout + result.stderr
    (receiver,) = yaml.safe_load(text)["receivers"]
    assert receiver["webhook_configs"] == [{"url": "http://127.0.0.1:9095/", "send_resolved": True}]


def test_alerts_go_by_e_mail_when_the_inventory_names_an_address(tmp_path: Path) -> None:
    text = render(
        "monitoring",
        "alertmanager.yml.j2",
        monitoring_alert_email_to="ops@example.org",
        monitoring_alert_email_from="alerts@example.org",
        monitoring_alert_email_smarthost="smtp.example.org:587",
        monitoring_alert_email_auth_username="alerts@example.org",
        monitoring_alert_email_auth_password="s3cret: with 'quotes'",
    )
    result = amtool_check(tmp_path, text)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(text)
    assert config["global"]["smtp_auth_password"] == "s3cret: with 'quotes'"
    assert config["receivers"][0]["email_configs"] == [{"to": "ops@example.org", "send_resolved": True}]


FIREWALL = {
    "firewall_overlay_subnet": "10.77.0.0/24",
    "firewall_overlay_interface": "wg0",
    "firewall_wireguard_port": 51820,
}


def test_the_exporters_are_open_on_the_overlay_to_the_monitoring_host_only() -> None:
    text = render(
        "firewall",
        "nftables.conf.j2",
        **FIREWALL,
        firewall_monitoring_sources=["10.77.0.21"],
        firewall_monitoring_tcp_ports=[9100, 6060],
    )
    (rule,) = [line.strip() for line in text.splitlines() if "9100" in line]
    assert rule == 'iifname "wg0" ip saddr { 10.77.0.21 } tcp dport { 9100, 6060 } accept comment "monitoring"'


@pytest.mark.parametrize("missing", ["firewall_monitoring_sources", "firewall_monitoring_tcp_ports"])
def test_without_a_monitoring_host_or_ports_nothing_more_is_open(missing: str) -> None:
    given = {"firewall_monitoring_sources": ["10.77.0.21"], "firewall_monitoring_tcp_ports": [9100], missing: []}
    text = render("firewall", "nftables.conf.j2", **FIREWALL, **given)
    assert "monitoring" not in text


def geth_exec_start(**overrides: object) -> str:
    unit = render(
        "geth",
        "geth.service.j2",
        **{
            "geth__release": "geth-linux-amd64-1.13.15-c5ba367e",
            "geth_nat_extip": "",
            "geth_after_units": [],
            **overrides,
        },
    )
    (line,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    return line


def test_geth_serves_metrics_on_the_overlay_address_when_enabled() -> None:
    line = geth_exec_start(geth_metrics_enabled=True, geth_metrics_address="10.77.0.11")
    assert " --metrics --metrics.addr 10.77.0.11 --metrics.port 6060" in line


def test_geth_serves_no_metrics_by_default() -> None:
    assert "--metrics" not in geth_exec_start()
