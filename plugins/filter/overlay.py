"""Filters for the private overlay (roles/wireguard): the addressing plan checked in one place, with unit tests.

- ``overlay_problems``: every problem of an addressing plan (subnet, one address per node, hub endpoints), as
  sentences an operator can act on; an empty list means the plan is sound.
- ``overlay_prefix``: the prefix length of a subnet (``10.77.0.0/22`` -> ``22``), for wg-quick's ``Address``.
- ``wireguard_endpoint``: ``host:port`` for an ``Endpoint`` line, an IPv6 address in brackets.

Python's ipaddress, not ansible.utils.ipaddr: that filter needs netaddr on the controller, and these checks are
few and exact.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError

_SMALLEST_PREFIX = 30  # a /30 holds two nodes; anything smaller holds none


def _network(subnet: object, what: str) -> ipaddress.IPv4Network:
    try:
        if "/" not in str(subnet):
            raise ValueError("no prefix length")
        network = ipaddress.ip_network(str(subnet), strict=True)
    except ValueError as exc:
        raise ValueError(f"{what} is {subnet!r}, expected an IPv4 network such as 10.77.0.0/22 ({exc})") from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError(f"{what} is {subnet!r}, expected an IPv4 network such as 10.77.0.0/22")
    return network


def overlay_problems(
    addresses: Mapping[str, object],
    subnet: object,
    hubs: Sequence[str] = (),
    endpoints: Mapping[str, object] | None = None,
    underlay: Sequence[object] = (),
) -> list[str]:
    """Problems of the plan: `addresses` maps each node to its overlay address ('' or None when the inventory
    gives none), `hubs` are the nodes others dial at their `endpoints` (public address or name), `underlay` the
    networks the nodes already use (the lab's or the VPC's subnet, a home LAN), which the overlay must not overlap.
    """
    try:
        network = _network(subnet, "overlay_subnet")
    except ValueError as exc:
        return [str(exc)]
    problems: list[str] = []
    if network.prefixlen > _SMALLEST_PREFIX:
        problems.append(f"overlay_subnet {network} is a /{network.prefixlen}: too small for a network of nodes")
    for other in underlay:
        try:
            used = ipaddress.ip_network(str(other), strict=False)
        except ValueError:
            problems.append(f"the underlay network {other!r} is not a network (such as 10.213.7.0/24)")
            continue
        if network.overlaps(used):
            problems.append(
                f"overlay_subnet {network} overlaps {used}, a network the nodes already use: "
                "choose a private range the hosts do not use (e.g. 10.77.0.0/22)"
            )
    owners: dict[ipaddress.IPv4Address, str] = {}
    for host, raw in addresses.items():
        if raw in (None, ""):
            problems.append(f"{host} has no overlay_address: give every node one address inside {network}")
            continue
        try:
            address = ipaddress.ip_address(str(raw))
        except ValueError:
            problems.append(f"{host}: overlay_address {raw!r} is not an IPv4 address")
            continue
        if address not in network or address in (network.network_address, network.broadcast_address):
            problems.append(f"{host}: overlay_address {address} is not a host address of overlay_subnet {network}")
            continue
        if address in owners:
            problems.append(f"{host}: overlay_address {address} is already {owners[address]}'s")
            continue
        owners[address] = host
    for hub in hubs:
        endpoint = (endpoints or {}).get(hub)
        if endpoint in (None, ""):
            problems.append(f"{hub} is a hub but has no host_public_address for the others to dial")
            continue
        try:
            if ipaddress.ip_address(str(endpoint)) in network:
                problems.append(f"{hub}: its public address {endpoint} lies inside overlay_subnet {network}")
        except ValueError:
            pass  # a DNS name: resolved by each node's wg-quick
    return problems


def overlay_prefix(subnet: object) -> int:
    try:
        return _network(subnet, "overlay_subnet").prefixlen
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def wireguard_endpoint(host: object, port: object) -> str:
    """host:port as WireGuard's Endpoint wants it: an IPv6 address in brackets."""
    text = str(host)
    try:
        if isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address):
            text = f"[{text}]"
    except ValueError:
        pass  # a DNS name
    return f"{text}:{int(str(port))}"


class FilterModule:
    def filters(self) -> dict:
        return {
            "overlay_problems": overlay_problems,
            "overlay_prefix": overlay_prefix,
            "wireguard_endpoint": wireguard_endpoint,
        }
