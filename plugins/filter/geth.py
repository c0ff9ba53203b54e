"""Filters for the geth network roles: logic that Jinja would make unreadable, kept here with unit tests.

- ``geth_arch``: the host's machine name (``ansible_architecture``) to geth's archive architecture.
- ``geth_enode_id`` / ``geth_enode``: a node's public identity from its nodekey, derived without starting geth,
  so static-node lists can be written before any node has run.
- ``clique_extradata``: the genesis ``extradata`` that names the initial Clique sealers.
- ``clique_address``: an Ethereum address checked and normalised (lower case, ``0x`` prefix).

The secp256k1 arithmetic is plain Python (affine point multiplication, about a millisecond per key): the
nodekey is a 32-byte secret scalar and the node ID is the uncompressed public point X||Y, as geth computes it.
Nothing here is constant-time; it runs on the controller over keys that already sit on disk on their hosts.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

# Machine names as `uname -m` (ansible_architecture) reports them -> geth's archive architecture names.
GETH_ARCHES: dict[str, str] = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm7",
    "armv7": "arm7",
}

# secp256k1 domain parameters (SEC 2, section 2.4.1).
_P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ADDRESS = re.compile(r"^(0x)?[0-9a-fA-F]{40}$")
_EXTRA_VANITY = 32  # bytes of zeros before the signer list (Clique's vanity prefix)
_EXTRA_SEAL = 65  # bytes of zeros after it (room for the seal signature, empty in the genesis)


def geth_arch(machine: str) -> str:
    """Map ``ansible_architecture`` (x86_64, aarch64, armv7l) to the geth archive name (amd64, arm64, arm7)."""
    key = str(machine).strip().lower()
    if key not in GETH_ARCHES:
        raise AnsibleFilterError(
            f"geth_arch: unknown architecture {machine!r}; expected one of x86_64, aarch64, armv7l "
            "(geth archives exist for amd64, arm64, arm7)"
        )
    return GETH_ARCHES[key]


def _point_add(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % _P == 0:
        return None
    # Tangent for doubling, chord otherwise.
    slope = (3 * a[0] * a[0] * pow(2 * a[1], -1, _P) if a == b else (b[1] - a[1]) * pow(b[0] - a[0], -1, _P)) % _P
    x = (slope * slope - a[0] - b[0]) % _P
    return x, (slope * (a[0] - x) - a[1]) % _P


def _scalar_mult(k: int, point: tuple[int, int]) -> tuple[int, int]:
    result: tuple[int, int] | None = None
    addend: tuple[int, int] | None = point
    while k:
        if k & 1:
            result = _point_add(result, addend)
        addend = _point_add(addend, addend)
        k >>= 1
    if result is None:  # only for k = 0 mod n, which _scalar rejects
        raise AnsibleFilterError("geth_enode_id: the nodekey maps to the point at infinity")
    return result


def _scalar(nodekey: str) -> int:
    text = str(nodekey).strip().lower()
    text = text.removeprefix("0x")
    if not _HEX64.match(text):
        # Never echo the value: it is a private key.
        raise AnsibleFilterError(
            f"geth_enode_id: a nodekey must be 64 hexadecimal characters (32 bytes); got {len(text)} characters"
        )
    k = int(text, 16)
    if not 0 < k < _N:
        raise AnsibleFilterError("geth_enode_id: the nodekey is not a valid secp256k1 private key (0 or >= n)")
    return k


def geth_enode_id(nodekey: str) -> str:
    """The node ID (128 hex characters: the uncompressed public key without its 0x04 prefix) of a nodekey."""
    x, y = _scalar_mult(_scalar(nodekey), _G)
    return f"{x:064x}{y:064x}"


def geth_enode(nodekey: str, address: str, port: int | str = 30303) -> str:
    """The enode URL other nodes dial: ``enode://<id>@<address>:<port>``."""
    if not str(address).strip():
        raise AnsibleFilterError("geth_enode: the node's public address is empty (set host_public_address)")
    try:
        port_number = int(port)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"geth_enode: port {port!r} is not an integer") from exc
    if not 0 < port_number < 65536:
        raise AnsibleFilterError(f"geth_enode: port {port_number} is outside 1-65535")
    host = str(address).strip()
    if ":" in host and not host.startswith("["):  # IPv6 literal
        host = f"[{host}]"
    return f"enode://{geth_enode_id(nodekey)}@{host}:{port_number}"


def clique_address(address: str) -> str:
    """An Ethereum address checked (20 bytes of hex) and normalised to ``0x`` + lower case."""
    text = str(address).strip()
    if not _ADDRESS.match(text):
        raise AnsibleFilterError(f"clique_address: {address!r} is not an Ethereum address (0x + 40 hex characters)")
    return "0x" + text.lower().removeprefix("0x")


def clique_extradata(sealers: list[str]) -> str:
    """Clique genesis extradata: 32 zero bytes, the sealer addresses (sorted), 65 zero bytes.

    Sorting makes the genesis independent of inventory order, so every run renders the same bytes.
    """
    if isinstance(sealers, str) or not isinstance(sealers, list | tuple):
        raise AnsibleFilterError(f"clique_extradata: expected a list of sealer addresses, got {sealers!r}")
    if not sealers:
        raise AnsibleFilterError("clique_extradata: the sealer list is empty; a Clique chain needs at least one")
    addresses = sorted(clique_address(a)[2:] for a in sealers)
    duplicates = sorted({a for a in addresses if addresses.count(a) > 1})
    if duplicates:
        raise AnsibleFilterError(
            f"clique_extradata: sealer address(es) listed twice: {', '.join('0x' + a for a in duplicates)} "
            "(two hosts share one key?)"
        )
    return "0x" + "00" * _EXTRA_VANITY + "".join(addresses) + "00" * _EXTRA_SEAL


class FilterModule:
    """Ansible entry point."""

    def filters(self) -> dict:
        return {
            "geth_arch": geth_arch,
            "geth_enode_id": geth_enode_id,
            "geth_enode": geth_enode,
            "clique_address": clique_address,
            "clique_extradata": clique_extradata,
        }
