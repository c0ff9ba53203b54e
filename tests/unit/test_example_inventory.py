"""inventories/example, used with inventories/aws as its README says, renders for every host: what the operator must
fill in is a placeholder that the roles' own checks refuse, and everything else passes them.

The EC2 hosts come from the aws_ec2 source in production; here a static file stands in for it (as in
test_aws_inventory.py). The patterns below are the roles' own: each test first checks that the role still has it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from heliogrid_testing.ansible_config import show

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example"
MINERS = [f"solar-miner-{n}" for n in (1, 2, 3)]
PIS = ["pi1", "pi2", "pi3"]
DEPLOYER = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"  # a real address, as the filled-in vault gives it
SHOWN = [
    "clique_genesis_chain_id",
    "clique_genesis_sealers",
    "clique_genesis_alloc",
    "geth_archive_sha256",
    "heliogrid_state_dir",
    "pi_agent_pip_find_links",
    "pi_agent_pip_no_index",
    "stats_app_pip_find_links",
    "stats_app_pip_no_index",
    "pi_agent_package_sha256",
    "stats_app_package_sha256",
]
PI_SHOWN = [
    "ansible_user",
    "pi_image_url",
    "pi_image_sha256",
    "pi_firstboot_timezone",
    "pi_firstboot_wifi_ssid",
    "pi_firstboot_wifi_country",
    "pi_agent_sensor",
    "pi_agent_capacity_watts",
    "pi_agent_owner_address",
    "pi_agent_s0_pin",
    "pi_agent_s0_impulses_per_kwh",
    "pi_agent_mcp3xxx_chip",
    "pi_agent_mcp3xxx_channel",
    "pi_agent_mcp3xxx_scale_watts",
    "pi_agent_mcp3xxx_offset",
    "pi_agent_led_pin",
    "pi_agent_button_pin",
]

# What one sensor needs and the other does not: the inventory sets them where they apply, the role's defaults elsewhere.
ROLE_DEFAULTS = {name for name in PI_SHOWN if name.startswith(("pi_agent_s0_", "pi_agent_mcp3xxx_"))}


def role_pattern(path: str, pattern: str) -> re.Pattern[str]:
    """The pattern a role's check uses, after checking the role still uses it (so this test cannot drift)."""
    assert pattern in (ROOT / "roles" / path).read_text(), f"{path} no longer checks {pattern}"
    return re.compile(pattern)


SHA256 = role_pattern("../plugins/test/values.py", "^[0-9a-f]{64}$")
AGENT_SHA256 = role_pattern("../plugins/test/values.py", "^[0-9a-f]{64}$")
STATS_SHA256 = role_pattern("../plugins/test/values.py", "^[0-9a-f]{64}$")
IMAGE_SHA256 = role_pattern("../plugins/test/values.py", "^[0-9a-f]{64}$")
OWNER = role_pattern("../plugins/test/values.py", "^0x[0-9a-fA-F]{40}$")
ADDRESS = role_pattern("clique_genesis/tasks/validate.yml", "^(0x)?[0-9a-fA-F]{40}$")
NUMBER = role_pattern("pi_agent/tasks/validate.yml", "^[0-9]+$")
TIMEZONE = role_pattern("pi_firstboot/tasks/validate.yml", "^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")
COUNTRY = role_pattern("pi_firstboot/tasks/validate.yml", "^[A-Z]{2}$")
ADMIN = role_pattern("pi_firstboot/tasks/validate.yml", "^[a-z_][a-z0-9_-]{0,31}$")
MCP_CHIPS = json.loads((ROOT / "files/pi_agent/src/heliogrid_agent/mcp_chips.json").read_text())


def render(tmp_path: Path, *extra: str) -> dict[str, dict]:
    inventories = tmp_path / "inventories"
    shutil.copytree(ROOT / "inventories" / "aws", inventories / "aws", ignore=shutil.ignore_patterns("*aws_ec2.yml"))
    shutil.copytree(EXAMPLE, inventories / "home")  # the operator's copy, a sibling of inventories/aws
    ec2 = {
        "miners": {"hosts": {name: {"host_public_address": f"192.0.2.{n}"} for n, name in enumerate(MINERS, 1)}},
        "stats": {"hosts": {"solar-stats-1": {"host_public_address": "192.0.2.21"}}},
    }
    (inventories / "aws" / "ec2.yml").write_text(yaml.safe_dump({"all": {"children": {"cloud": {"children": ec2}}}}))
    found: dict[str, dict] = {}
    for pattern, names in (("all", SHOWN), ("pis", PI_SHOWN)):
        values = [f"{name} | default(None)" if name in ROLE_DEFAULTS else name for name in names]
        expression = f"dict({json.dumps(names)} | zip([{', '.join(values)}]))"
        extras = ("-e", f"vault_deployer_address={DEPLOYER}", *extra)
        for host, shown in show(
            tmp_path, ["inventories/aws", "inventories/home"], pattern, expression, *extras
        ).items():
            found.setdefault(host, {}).update(shown)
    return found


@pytest.fixture(scope="module")
def hosts(tmp_path_factory) -> dict[str, dict]:
    return render(tmp_path_factory.mktemp("example"))


def test_every_host_of_the_network_renders(hosts) -> None:
    assert set(hosts) == {*MINERS, "solar-stats-1", *PIS, "localhost"}


def test_what_the_operator_fills_in_is_refused_until_then(hosts) -> None:
    for host, found in hosts.items():
        sha256 = found["geth_archive_sha256"]
        assert set(sha256) == {"amd64", "arm64"}, host
        assert not any(SHA256.match(digest) for digest in sha256.values()), "never ship digests nobody checked"
        # A wheelhouse only (heliogrid-agent and heliogrid-stats are not on PyPI), and none named yet.
        assert found["pi_agent_pip_no_index"] is True, host
        assert found["pi_agent_pip_find_links"] == [], host
        assert found["stats_app_pip_no_index"] is True, host
        assert found["stats_app_pip_find_links"] == [], host
        # The digests of the wheels the operator builds: placeholders until then.
        assert "FILL-IN" in found["pi_agent_package_sha256"], host
        assert not AGENT_SHA256.match(found["pi_agent_package_sha256"]), host
        assert "FILL-IN" in found["stats_app_package_sha256"], host
        assert not STATS_SHA256.match(found["stats_app_package_sha256"]), host
    for pi in PIS:
        found = hosts[pi]
        assert "FILL-IN" in found["pi_image_url"], pi
        assert "FILL-IN" in found["pi_image_sha256"], pi
        assert not IMAGE_SHA256.match(found["pi_image_sha256"].lower()), pi
        owner = found["pi_agent_owner_address"]
        assert "FILL-IN" in owner, pi
        assert owner, f"{pi}: an empty owner would be accepted (derived from the meter key), so it is no placeholder"
        assert not OWNER.match(owner), pi


def test_everything_else_is_valid(hosts) -> None:
    for host, found in hosts.items():
        assert int(found["clique_genesis_chain_id"]) > 0, host
        assert found["clique_genesis_sealers"] == MINERS, host
        assert found["clique_genesis_alloc"] == {DEPLOYER: "1000000000000000000000000"}, host
        assert all(ADDRESS.match(address) for address in found["clique_genesis_alloc"]), host
        assert found["heliogrid_state_dir"].endswith("/inventories/aws/state"), (host, found["heliogrid_state_dir"])
    sensors = set()
    for pi in PIS:
        found = hosts[pi]
        assert ADMIN.match(found["ansible_user"]), pi
        assert found["ansible_user"] not in ("root", "pi"), pi
        assert TIMEZONE.match(found["pi_firstboot_timezone"]), pi
        assert COUNTRY.match(found["pi_firstboot_wifi_country"]), pi
        assert found["pi_firstboot_wifi_ssid"] == "", "without the vault the Pis use Ethernet"
        assert NUMBER.match(str(found["pi_agent_capacity_watts"])), pi
        assert int(found["pi_agent_capacity_watts"]) > 0, pi
        sensor = sensors.add(found["pi_agent_sensor"]) or found["pi_agent_sensor"]
        assert sensor in ("s0", "mcp3xxx"), f"{pi}: a real Pi has a real sensor, got {sensor}"
        used = []
        if sensor == "s0":
            assert NUMBER.match(str(found["pi_agent_s0_pin"])), pi
            assert int(found["pi_agent_s0_pin"]) <= 27, pi
            assert int(found["pi_agent_s0_impulses_per_kwh"]) > 0, pi
            used.append(int(found["pi_agent_s0_pin"]))
        else:
            assert found["pi_agent_mcp3xxx_chip"] in MCP_CHIPS, pi
            assert 0 <= int(found["pi_agent_mcp3xxx_channel"]) < MCP_CHIPS[found["pi_agent_mcp3xxx_chip"]], pi
            assert float(found["pi_agent_mcp3xxx_scale_watts"]) > 0, pi
            assert 0 <= float(found["pi_agent_mcp3xxx_offset"]) < 1, pi
            used += [7, 8, 9, 10, 11]  # SPI
        for pin in (found["pi_agent_led_pin"], found["pi_agent_button_pin"]):
            if pin is not None:
                assert 0 <= int(pin) <= 27, (pi, pin, used)
                assert int(pin) not in used, (pi, pin, used)
                used.append(int(pin))
    assert sensors == {"s0", "mcp3xxx"}, "the example shows both real sensors"


def test_the_vault_stubs_hold_placeholders_that_are_refused(tmp_path) -> None:
    deployer = yaml.safe_load((ROOT / "inventories/aws/group_vars/deployer/vault.yml.example").read_text())
    assert set(deployer) == {"vault_contracts_deployer_private_key", "vault_deployer_address"}
    assert not ADDRESS.match(deployer["vault_deployer_address"])
    assert not re.fullmatch("0x[0-9a-fA-F]{64}", deployer["vault_contracts_deployer_private_key"])
    wifi = yaml.safe_load((EXAMPLE / "group_vars/pis/vault.yml.example").read_text())
    assert set(wifi) == {"vault_pi_wifi_ssid", "vault_pi_wifi_passphrase"}
    role = (ROOT / "roles/pi_firstboot/tasks/validate.yml").read_text()
    assert "pi_firstboot_wifi_ssid | length <= 32" in role
    assert "pi_firstboot_wifi_passphrase | length <= 63" in role
    assert len(wifi["vault_pi_wifi_ssid"]) > 32
    assert len(wifi["vault_pi_wifi_passphrase"]) > 63

    # The stub's names are the ones the inventory reads: loaded as the encrypted file would be, they reach the Pis.
    pis = render(tmp_path, "-e", f"@{EXAMPLE / 'group_vars/pis/vault.yml.example'}")
    assert {pis[pi]["pi_firstboot_wifi_ssid"] for pi in PIS} == {wifi["vault_pi_wifi_ssid"]}


def test_the_stubs_are_never_loaded_as_variables(hosts) -> None:
    # The .example files sit in group_vars but Ansible skips them: the Pis render without Wi-Fi (above), and an
    # unfilled deployer stub would have replaced the address given on the command line.
    assert all(found["clique_genesis_alloc"] == {DEPLOYER: "1000000000000000000000000"} for found in hosts.values())
    assert all(hosts[pi]["pi_firstboot_wifi_ssid"] == "" for pi in PIS)
