"""The overlay's addressing plan (plugins/filter/overlay.py): what the wireguard role refuses before a host changes."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from heliogrid_testing.plugins import plugin

overlay = plugin("plugins/filter/overlay.py")

SUBNET = "10.77.0.0/24"
HUBS = ["miner1", "stats1"]
ENDPOINTS = {"miner1": "203.0.113.11", "stats1": "stats.example.org"}
PLAN = {"miner1": "10.77.0.11", "stats1": "10.77.0.21", "pi1": "10.77.0.31", "pi2": "10.77.0.32"}


def problems(addresses=PLAN, subnet=SUBNET, hubs=HUBS, endpoints=ENDPOINTS, underlay=("10.213.7.0/24",)) -> list[str]:
    return overlay.overlay_problems(addresses, subnet, hubs, endpoints, list(underlay))


def test_a_sound_plan_has_no_problem() -> None:
    assert problems() == []


def test_a_pi_without_an_address_is_named() -> None:
    expected = "pi2 has no overlay_address: give every node one address inside 10.77.0.0/24"
    assert problems({**PLAN, "pi2": ""}) == [expected]


def test_a_duplicate_address_names_both_hosts() -> None:
    assert problems({**PLAN, "pi2": "10.77.0.31"}) == ["pi2: overlay_address 10.77.0.31 is already pi1's"]


@pytest.mark.parametrize("address", ["10.77.1.5", "10.77.0.0", "10.77.0.255"])
def test_an_address_outside_the_subnet_or_not_a_host_address_is_refused(address: str) -> None:
    assert problems({**PLAN, "pi2": address}) == [
        f"pi2: overlay_address {address} is not a host address of overlay_subnet 10.77.0.0/24"
    ]


def test_an_address_that_is_no_address_is_refused() -> None:
    assert problems({**PLAN, "pi2": "10.77.0.300"}) == ["pi2: overlay_address '10.77.0.300' is not an IPv4 address"]


@pytest.mark.parametrize("underlay", ["10.77.0.0/16", "10.77.0.128/25", "10.0.0.0/8"])
def test_a_subnet_overlapping_a_network_in_use_is_refused(underlay: str) -> None:
    found = problems(underlay=[underlay])
    assert found == [
        f"overlay_subnet 10.77.0.0/24 overlaps {underlay}, a network the nodes already use: "
        "choose a private range the hosts do not use (e.g. 10.77.0.0/22)"
    ]


@pytest.mark.parametrize("subnet", ["10.77.0.1/24", "10.77.0.0", "fd00::/64", "wg"])
def test_a_subnet_that_is_not_an_ipv4_network_is_refused_alone(subnet: str) -> None:
    found = problems(subnet=subnet)
    assert len(found) == 1
    assert found[0].startswith(f"overlay_subnet is {subnet!r}, expected an IPv4 network")


def test_a_tiny_subnet_is_refused() -> None:
    assert "overlay_subnet 10.77.0.0/31 is a /31: too small for a network of nodes" in problems(subnet="10.77.0.0/31")


def test_a_hub_needs_a_public_address_outside_the_overlay() -> None:
    assert problems(endpoints={"miner1": "", "stats1": "10.77.0.99"}) == [
        "miner1 is a hub but has no host_public_address for the others to dial",
        "stats1: its public address 10.77.0.99 lies inside overlay_subnet 10.77.0.0/24",
    ]


def test_every_problem_is_reported_at_once() -> None:
    assert len(problems({"miner1": "10.77.0.11", "stats1": "10.77.0.11", "pi1": None}, underlay=["10.77.0.0/25"])) == 3


def test_prefix_and_endpoint_formats() -> None:
    assert overlay.overlay_prefix("10.77.0.0/22") == 22
    assert overlay.wireguard_endpoint("203.0.113.11", 51820) == "203.0.113.11:51820"
    assert overlay.wireguard_endpoint("2001:db8::1", "51820") == "[2001:db8::1]:51820"
    assert overlay.wireguard_endpoint("hub.example.org", 51820) == "hub.example.org:51820"
    with pytest.raises(AnsibleFilterError, match="expected an IPv4 network"):
        overlay.overlay_prefix("10.77.0.0")
