"""The address-plan filters: a host's address from its subnet and host number, as the overlay numbers cloud hosts."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from heliogrid_testing.plugins import plugin

ipv4 = plugin("plugins/filter/ipv4.py")


@pytest.mark.parametrize(
    ("subnet", "number", "expected"),
    [("10.77.0.0/22", 11, "10.77.0.11"), ("10.77.0.0/22", 21, "10.77.0.21"), ("10.77.0.0/22", 257, "10.77.1.1")],
)
def test_host_number_n_is_the_subnets_nth_address(subnet: str, number: int, expected: str) -> None:
    assert ipv4.ipv4_host(subnet, number) == expected


def test_a_subnet_has_every_address_but_network_and_broadcast_as_host_numbers() -> None:
    assert ipv4.ipv4_host_count("10.77.0.0/22") == 1022
    assert ipv4.ipv4_host_count("10.77.0.0/28") == 14
    assert ipv4.ipv4_host("10.77.0.0/28", 14) == "10.77.0.14"


@pytest.mark.parametrize("number", [0, 15, -1, "11", True])
def test_a_host_number_outside_the_subnet_is_refused_with_the_range(number: object) -> None:
    with pytest.raises(AnsibleFilterError, match=r"host number .* is not within 1\.\.14 of 10\.77\.0\.0/28"):
        ipv4.ipv4_host("10.77.0.0/28", number)


@pytest.mark.parametrize("subnet", ["10.77.0.5/22", "10.77.0.0/33", "ten/8", ""])
def test_a_subnet_that_is_no_ipv4_network_is_refused_with_the_value(subnet: str) -> None:
    with pytest.raises(AnsibleFilterError, match=r"is not an IPv4 subnet such as 10\.77\.0\.0/22"):
        ipv4.ipv4_host(subnet, 1)


def test_an_ipv6_prefix_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="is an IPv6 prefix"):
        ipv4.ipv4_host_count("fd77::/64")
