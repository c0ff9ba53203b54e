"""The monitoring role's alert rules (roles/monitoring/templates/heliogrid.rules.yml.j2), rendered with the role's
defaults as Ansible renders them, each proven with `promtool test rules`: it fires on the series that should fire it,
and stays silent on a series just short of it. promtool comes from Debian bookworm's prometheus package, unpacked
without installing anything by lab/fetch-promtool.sh (run by `make setup`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import jinja2
import yaml
from ansible.plugins.filter.core import to_bool

from heliogrid_testing.promtool import tool

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "monitoring"
PERIOD = 5  # the lab's clique period


def rules(**overrides: object) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROLE / "templates"), undefined=jinja2.StrictUndefined)
    env.filters["bool"] = to_bool
    variables = {**yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()), "monitoring_clique_period": PERIOD}
    variables.update(ansible_managed="Ansible managed", **overrides)
    return env.get_template("heliogrid.rules.yml.j2").render(**variables)


def run_promtool(tmp_path: Path, tests: list[dict], **overrides: object) -> subprocess.CompletedProcess:
    """promtool compares annotations too: the behaviour tests run the rules without them (their templates are
    checked by test_the_rendered_rules_pass_promtool_check)."""
    groups = yaml.safe_load(rules(**overrides))
    for group in groups["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "heliogrid.rules.yml").write_text(yaml.safe_dump(groups))
    spec = {"rule_files": ["heliogrid.rules.yml"], "evaluation_interval": "15s", "tests": tests}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return subprocess.run(
        [str(tool()), "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def expect(tmp_path: Path, series: list[dict], alertname: str, eval_time: str, alerts: list[dict]) -> None:
    """promtool must find exactly `alerts` (labels only) for `alertname` at `eval_time` on `series`."""
    test = {
        "interval": "15s",
        "input_series": series,
        "alert_rule_test": [
            {
                "eval_time": eval_time,
                "alertname": alertname,
                "exp_alerts": [{"exp_labels": a} for a in alerts],
            }
        ],
    }
    result = run_promtool(tmp_path, [test])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rendered_rules_pass_promtool_check(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(rules(monitoring_alert_test_rule=True))
    result = subprocess.run([str(tool()), "check", "rules", str(tmp_path / "r.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


SIGNER = "0x" + "aa" * 20
CLIQUE = {"job": "clique", "instance": "127.0.0.1:9730", "host": "stats1"}


def _labels(metric: str, labels: dict) -> str:
    return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def test_a_sealer_that_missed_three_turns_in_a_row_fires_missed_turns(tmp_path: Path) -> None:
    series = [
        {
            "series": _labels("heliogrid_clique_signer_missed_turns_in_a_row", {**CLIQUE, "signer": SIGNER}),
            "values": "0 1 2 3 3",
        }
    ]
    expect(tmp_path, series, "HelioGridSealerMissedTurns", "1m", [{"severity": "critical", "signer": SIGNER, **CLIQUE}])


def test_a_sealer_that_missed_two_turns_does_not_fire(tmp_path: Path) -> None:
    series = [
        {
            "series": _labels("heliogrid_clique_signer_missed_turns_in_a_row", {**CLIQUE, "signer": SIGNER}),
            "values": "0 1 2 2 2",
        }
    ]
    expect(tmp_path, series, "HelioGridSealerMissedTurns", "1m", [])


def test_a_head_older_than_three_periods_fires_head_stalled(tmp_path: Path) -> None:
    # At 60 s the head's timestamp is 44 s: 16 s old, more than 3 x 5 s.
    series = [{"series": _labels("heliogrid_clique_head_timestamp_seconds", CLIQUE), "values": "0 15 30 44 44"}]
    expect(tmp_path, series, "HelioGridHeadStalled", "1m", [{"severity": "critical", **CLIQUE}])


def test_a_head_three_periods_old_does_not_fire(tmp_path: Path) -> None:
    series = [{"series": _labels("heliogrid_clique_head_timestamp_seconds", CLIQUE), "values": "0 15 30 45 45"}]
    expect(tmp_path, series, "HelioGridHeadStalled", "1m", [])


PI = {"job": "pi_agent", "instance": "10.77.0.32:9720", "host": "pi2"}


def test_a_pi_far_behind_the_head_for_two_minutes_fires_pi_behind(tmp_path: Path) -> None:
    series = [
        {"series": _labels("heliogrid_clique_head_number", CLIQUE), "values": "100+3x12"},
        {"series": _labels("heliogrid_agent_node_block_number", PI), "values": "100x12"},
    ]
    # 13 blocks behind from 75 s on: pending two minutes, firing at 3m15s.
    expect(tmp_path, series, "HelioGridPiBehind", "3m15s", [{"severity": "warning", **PI}])
    expect(tmp_path, series, "HelioGridPiBehind", "2m", [])


def test_a_pi_a_few_blocks_behind_does_not_fire(tmp_path: Path) -> None:
    series = [
        {"series": _labels("heliogrid_clique_head_number", CLIQUE), "values": "100+3x12"},
        {"series": _labels("heliogrid_agent_node_block_number", PI), "values": "100+3x12"},
    ]
    expect(tmp_path, series, "HelioGridPiBehind", "3m", [])


def test_a_pi_whose_agent_cannot_be_scraped_fires_unreachable(tmp_path: Path) -> None:
    series = [{"series": _labels("up", PI), "values": "1 0x12"}]
    expect(tmp_path, series, "HelioGridPiUnreachable", "3m", [{"severity": "warning", **PI}])
    expect(tmp_path, series, "HelioGridPiUnreachable", "1m", [])


def test_a_pi_whose_agent_lost_its_node_fires_unreachable(tmp_path: Path) -> None:
    series = [
        {"series": _labels("up", PI), "values": "1x12"},
        {"series": _labels("heliogrid_agent_node_up", PI), "values": "1 0x12"},
    ]
    expect(tmp_path, series, "HelioGridPiUnreachable", "3m", [{"severity": "warning", **PI}])


def test_a_reachable_pi_does_not_fire_unreachable(tmp_path: Path) -> None:
    series = [
        {"series": _labels("up", PI), "values": "1x12"},
        {"series": _labels("heliogrid_agent_node_up", PI), "values": "1x12"},
    ]
    expect(tmp_path, series, "HelioGridPiUnreachable", "3m", [])


def test_a_report_unmined_for_more_than_fifteen_minutes_fires_unconfirmed(tmp_path: Path) -> None:
    # Signed at t=0 (wall time 0 in promtool's clock); still unmined at 16 minutes.
    series = [
        {"series": _labels("heliogrid_agent_oldest_unconfirmed_report_timestamp_seconds", PI), "values": "0.001x70"}
    ]
    expect(tmp_path, series, "HelioGridReportUnconfirmed", "16m", [{"severity": "warning", **PI}])
    expect(tmp_path, series, "HelioGridReportUnconfirmed", "14m", [])


def test_no_unmined_report_does_not_fire_unconfirmed(tmp_path: Path) -> None:
    series = [{"series": _labels("heliogrid_agent_oldest_unconfirmed_report_timestamp_seconds", PI), "values": "0x70"}]
    expect(tmp_path, series, "HelioGridReportUnconfirmed", "16m", [])


def test_a_meter_low_on_gas_for_five_minutes_fires_gas_low(tmp_path: Path) -> None:
    series = [{"series": _labels("heliogrid_agent_gas_low", PI), "values": "0 1x30"}]
    expect(tmp_path, series, "HelioGridMeterGasLow", "6m", [{"severity": "warning", **PI}])
    expect(tmp_path, series, "HelioGridMeterGasLow", "4m", [])


def test_a_meter_with_gas_does_not_fire_gas_low(tmp_path: Path) -> None:
    series = [{"series": _labels("heliogrid_agent_gas_low", PI), "values": "0x30"}]
    expect(tmp_path, series, "HelioGridMeterGasLow", "6m", [])


NODE = {
    "job": "node",
    "instance": "10.77.0.11:9100",
    "host": "miner1",
    "mountpoint": "/",
    "fstype": "ext4",
    "device": "/dev/sda1",
}


def test_a_disk_more_than_85_percent_full_fires_disk_full(tmp_path: Path) -> None:
    series = [
        {"series": _labels("node_filesystem_size_bytes", NODE), "values": "1000x30"},
        {"series": _labels("node_filesystem_avail_bytes", NODE), "values": "140x30"},
    ]
    expect(tmp_path, series, "HelioGridDiskFull", "6m", [{"severity": "warning", **NODE}])


def test_a_disk_85_percent_full_does_not_fire(tmp_path: Path) -> None:
    series = [
        {"series": _labels("node_filesystem_size_bytes", NODE), "values": "1000x30"},
        {"series": _labels("node_filesystem_avail_bytes", NODE), "values": "150x30"},
    ]
    expect(tmp_path, series, "HelioGridDiskFull", "6m", [])


def test_a_full_tmpfs_does_not_fire_disk_full(tmp_path: Path) -> None:
    tmpfs = {**NODE, "mountpoint": "/run", "fstype": "tmpfs"}
    series = [
        {"series": _labels("node_filesystem_size_bytes", tmpfs), "values": "1000x30"},
        {"series": _labels("node_filesystem_avail_bytes", tmpfs), "values": "0x30"},
    ]
    expect(tmp_path, series, "HelioGridDiskFull", "6m", [])


def test_the_thresholds_come_from_the_role_variables(tmp_path: Path) -> None:
    series = [
        {
            "series": _labels("heliogrid_clique_signer_missed_turns_in_a_row", {**CLIQUE, "signer": SIGNER}),
            "values": "0 1 2 2 2",
        }
    ]
    test = {
        "interval": "15s",
        "input_series": series,
        "alert_rule_test": [
            {
                "eval_time": "1m",
                "alertname": "HelioGridSealerMissedTurns",
                "exp_alerts": [{"exp_labels": {"severity": "critical", "signer": SIGNER, **CLIQUE}}],
            }
        ],
    }
    result = run_promtool(tmp_path, [test], monitoring_alert_missed_turns=2)
    assert result.returncode == 0, result.stdout + result.stderr
