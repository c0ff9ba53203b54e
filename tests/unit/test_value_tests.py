"""The shared Jinja tests in plugins/test (tcp_port, eth_address, sha256, enode, cidr, ip_address), run as the roles'
validate tasks run them: through Ansible's templating, with the plugin folder ansible.cfg names."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from ansible.plugins.loader import init_plugin_loader, test_loader
from ansible.template import Templar, trust_as_template

ROOT = Path(__file__).resolve().parents[2]
NODE_ID = "ca634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd3138" * 2


@pytest.fixture(scope="module")
def render():
    init_plugin_loader()
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "ansible.cfg")
    test_loader.add_directory(str(ROOT / config["defaults"]["test_plugins"]))

    def render(expression: str, value: object) -> object:
        return Templar(loader=None, variables={"value": value}).template(trust_as_template(f"{{{{ {expression} }}}}"))

    return render


@pytest.mark.parametrize("port", [1, 80, "8545", 65535])
def test_a_port_in_range_is_a_tcp_port(render, port: object) -> None:
    assert render("value is tcp_port", port) is True


# The last: "80" in full-width digits, which str.isdigit accepts.
@pytest.mark.parametrize("port", [0, 65536, "70000", "-1", "80a", "", None, True, 80.5, "\uff18\uff10"])
def test_a_port_out_of_range_or_not_a_whole_number_is_not_a_tcp_port(render, port: object) -> None:
    assert render("value is tcp_port", port) is False


def test_reject_with_tcp_port_names_the_bad_ports(render) -> None:
    assert render("value | reject('tcp_port') | list", [30303, "0", 8545, "99999"]) == ["0", "99999"]


@pytest.mark.parametrize("address", ["0x" + "ab" * 20, "0x" + "AbCd" * 10])
def test_an_address_of_40_hex_characters_is_an_eth_address(render, address: str) -> None:
    assert render("value is eth_address", address) is True


@pytest.mark.parametrize("address", ["ab" * 20, "0x" + "ab" * 19, "0x" + "ab" * 21, "0x" + "g" * 40, "", None, 1])
def test_anything_else_is_not_an_eth_address(render, address: object) -> None:
    assert render("value is eth_address", address) is False


def test_a_lower_case_digest_is_a_sha256(render) -> None:
    assert render("value is sha256", "0123456789abcdef" * 4) is True


@pytest.mark.parametrize("digest", ["0123456789ABCDEF" * 4, "0" * 63, "0" * 65, "sha256:" + "0" * 64, "", None])
def test_an_upper_case_short_long_or_prefixed_digest_is_not_a_sha256(render, digest: object) -> None:
    assert render("value is sha256", digest) is False


@pytest.mark.parametrize("host", ["10.0.0.1", "miner1.example.org", "[fd00::1]"])
def test_an_enode_url_with_node_id_host_and_port_is_an_enode(render, host: str) -> None:
    assert render("value is enode", f"enode://{NODE_ID}@{host}:30303") is True


@pytest.mark.parametrize(
    "url",
    [
        f"enode://{NODE_ID}@10.0.0.1",  # no port
        f"enode://{NODE_ID}@10.0.0.1:0",
        f"enode://{NODE_ID}@10.0.0.1:65536",
        f"enode://{NODE_ID.upper()}@10.0.0.1:30303",
        f"enode://{NODE_ID[:-2]}@10.0.0.1:30303",
        f"enode://{NODE_ID}@fd00::1:30303",  # IPv6 without brackets
        f"{NODE_ID}@10.0.0.1:30303",
        None,
    ],
)
def test_a_url_without_a_full_node_id_or_a_valid_port_is_not_an_enode(render, url: object) -> None:
    assert render("value is enode", url) is False


@pytest.mark.parametrize("block", ["203.0.113.7/32", "0.0.0.0/0", "10.77.0.0/22", "fd77::/64"])
def test_a_network_block_with_a_prefix_length_is_a_cidr(render, block: str) -> None:
    assert render("value is cidr", block) is True


@pytest.mark.parametrize(
    "block",
    ["10.77.0.5/22", "10.77.0.0/33", "10.77.0.0", "10.77.0.0/255.255.252.0", "300.0.0.0/8", "/8", "", None, 8],
)
def test_host_bits_a_bare_address_or_a_netmask_is_not_a_cidr(render, block: object) -> None:
    assert render("value is cidr", block) is False


def test_cidr_with_a_version_accepts_that_family_only(render) -> None:
    assert render("value is cidr(4)", "10.77.0.0/22") is True
    assert render("value is cidr(4)", "fd77::/64") is False
    assert render("value is cidr(6)", "fd77::/64") is True


@pytest.mark.parametrize("address", ["10.77.0.21", "0.0.0.0", "127.0.0.1", "::", "fd77::15", "::ffff:10.0.0.1"])
def test_a_host_address_is_an_ip_address(render, address: str) -> None:
    assert render("value is ip_address", address) is True


@pytest.mark.parametrize(
    "address",
    [
        "10.77.0.0/22",
        "10.77.0.256",
        "010.77.0.1",
        "10.77.0.1:9100",
        " 10.77.0.1",
        "localhost",
        "",
        None,
        167772161,
    ],
)
def test_a_network_a_port_a_name_or_not_a_string_is_not_an_ip_address(render, address: object) -> None:
    assert render("value is ip_address", address) is False


def test_ip_address_with_a_version_accepts_that_family_only(render) -> None:
    assert render("value is ip_address(4)", "10.77.0.21") is True
    assert render("value is ip_address(4)", "fd77::15") is False
    assert render("value is ip_address(6)", "fd77::15") is True
    assert render("value is ip_address(6)", "10.77.0.21") is False
