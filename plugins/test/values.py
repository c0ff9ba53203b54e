"""Checks the roles' validate tasks share, as Jinja tests: ``port is tcp_port``, ``address is eth_address``,
``url is enode``, ``digest is sha256``, ``block is cidr`` (``is cidr(4)``: IPv4 only), ``address is ip_address``
(``is ip_address(4)``: IPv4 only). Each is written once here, with unit tests (tests/unit/test_value_tests.py), on
Python's ipaddress: ansible.utils' tests load netaddr into every Ansible worker that evaluates them.
"""

from __future__ import annotations

import ipaddress
import re

_ETH_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# enode://<node id: 128 hex>@<host name, IPv4 or [IPv6]>:<port>
_ENODE = re.compile(r"^enode://[0-9a-f]{128}@(?:[^:\[\]/@]+|\[[0-9a-fA-F:]+\]):([0-9]+)$")


def tcp_port(value: object) -> bool:
    """A TCP port: a whole number 1..65535, as an int or a string of digits (not a bool, not 80.5)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 1 <= value <= 65535
    text = str(value)
    return text.isascii() and text.isdigit() and 1 <= int(text) <= 65535


def eth_address(value: object) -> bool:
    """An Ethereum address: 0x and 40 hexadecimal characters (either case; the checksum is not checked)."""
    return isinstance(value, str) and _ETH_ADDRESS.match(value) is not None


def sha256(value: object) -> bool:
    """A sha256 digest as sha256sum prints it: 64 lower-case hexadecimal characters."""
    return isinstance(value, str) and _SHA256.match(value) is not None


def enode(value: object) -> bool:
    """An enode URL geth dials: enode://<128 lower-case hex>@<address>:<TCP port>."""
    found = _ENODE.match(value) if isinstance(value, str) else None
    return found is not None and tcp_port(found.group(1))


def cidr(value: object, version: int | None = None) -> bool:
    """A network block, a.b.c.d/n or an IPv6 prefix, with no host bits set (10.77.0.0/22, not 10.77.0.5/22:
    which network was meant would be a guess); ``version`` 4 or 6 accepts that family only."""
    if not isinstance(value, str):
        return False
    prefix = value.rpartition("/")[2]
    if not (prefix.isascii() and prefix.isdigit()):
        return False  # a bare address or a netmask: AWS and WireGuard take a prefix length
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return version is None or network.version == int(version)


def ip_address(value: object, version: int | None = None) -> bool:
    """One host address, a.b.c.d or IPv6 (no prefix, no port); ``version`` 4 or 6 accepts that family only."""
    if not isinstance(value, str):
        return False
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return version is None or address.version == int(version)


class TestModule:
    """Ansible's entry point for test plugins."""

    def tests(self) -> dict[str, object]:
        return {
            "tcp_port": tcp_port,
            "eth_address": eth_address,
            "sha256": sha256,
            "enode": enode,
            "cidr": cidr,
            "ip_address": ip_address,
        }
