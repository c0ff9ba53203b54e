"""Filters for address plans: a host's address from a subnet and its host number, the way the overlay numbers its
cloud hosts (``'10.77.0.0/22' | ipv4_host(11)`` is ``10.77.0.11``).

- ``ipv4_host``: the address of host number N in an IPv4 subnet.
- ``ipv4_host_count``: how many host numbers the subnet has (its addresses less the network and broadcast ones).
"""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError


def _network(subnet: object, caller: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.ip_network(str(subnet), strict=True)
    except ValueError as exc:
        raise AnsibleFilterError(f"{caller}: {subnet!r} is not an IPv4 subnet such as 10.77.0.0/22 ({exc})") from exc
    if not isinstance(network, ipaddress.IPv4Network):
        raise AnsibleFilterError(f"{caller}: {subnet!r} is an IPv6 prefix; expected an IPv4 subnet, e.g. 10.77.0.0/22")
    return network


def ipv4_host_count(subnet: object) -> int:
    """Host numbers 1..N of the subnet: every address but the first (network) and the last (broadcast)."""
    return max(_network(subnet, "ipv4_host_count").num_addresses - 2, 0)


def ipv4_host(subnet: object, number: object) -> str:
    """The address of host number ``number`` (1 is the first host) in the IPv4 ``subnet``."""
    network = _network(subnet, "ipv4_host")
    count = max(network.num_addresses - 2, 0)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= count:
        raise AnsibleFilterError(f"ipv4_host: host number {number!r} is not within 1..{count} of {network}")
    return str(network[number])


class FilterModule:
    """Ansible entry point."""

    def filters(self) -> dict:
        return {"ipv4_host": ipv4_host, "ipv4_host_count": ipv4_host_count}
