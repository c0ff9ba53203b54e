"""The geth filter plugins: architecture mapping, enode derivation from a nodekey, Clique extradata."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from heliogrid_testing.plugins import plugin

geth = plugin("plugins/filter/geth.py")

# Published pairs: geth's own test key (crypto tests) and a nodekey/enode pair from a geth test script
# (`--nodekeyhex 5e04...` printed as enode://bb9c...).
KNOWN_PAIRS = [
    (
        "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291",
        "ca634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd3138"
        "7574077f301b421bc84df7266c44e9e6d569fc56be00812904767bf5ccd1fc7f",
    ),
    (
        "5e048defbb082a83db7aa0c508696b70ecfb25de3973d7ea9cd5eeea2d295c17",
        "bb9c918c07cfb577ecdfd3785a8da4c7fecc2ae1838191e7b43b35214d480e9d"
        "5eae2775bafeea87038243010edd7670a686ae30c5d5a025b03582fdedec58ba",
    ),
]


@pytest.mark.parametrize(
    ("machine", "expected"),
    [("x86_64", "amd64"), ("aarch64", "arm64"), ("armv7l", "arm7"), ("AARCH64", "arm64")],
)
def test_machine_names_map_to_geth_archive_arches(machine: str, expected: str) -> None:
    assert geth.geth_arch(machine) == expected


@pytest.mark.parametrize("machine", ["i686", "riscv64", "ppc64le", ""])
def test_unknown_architecture_is_refused_naming_the_value(machine: str) -> None:
    with pytest.raises(AnsibleFilterError, match=f"unknown architecture '{machine}'"):
        geth.geth_arch(machine)


@pytest.mark.parametrize(("nodekey", "node_id"), KNOWN_PAIRS)
def test_enode_id_is_the_uncompressed_public_key_of_the_nodekey(nodekey: str, node_id: str) -> None:
    assert geth.geth_enode_id(nodekey) == node_id


def test_enode_id_accepts_0x_prefix_and_trailing_newline() -> None:
    nodekey, node_id = KNOWN_PAIRS[0]
    assert geth.geth_enode_id(f"0x{nodekey.upper()}\n") == node_id


def test_enode_id_agrees_with_eth_keys_for_other_keys() -> None:
    keys = pytest.importorskip("eth_keys").keys
    for nodekey in ("01".rjust(64, "0"), "7f" + "ff" * 31, "0123456789abcdef" * 4):
        expected = keys.PrivateKey(bytes.fromhex(nodekey)).public_key.to_hex()[2:]
        assert geth.geth_enode_id(nodekey) == expected


def test_enode_url_joins_id_address_and_port() -> None:
    nodekey, node_id = KNOWN_PAIRS[1]
    assert geth.geth_enode(nodekey, "10.213.7.11", 30303) == f"enode://{node_id}@10.213.7.11:30303"
    assert geth.geth_enode(nodekey, "fd00::1", "30304") == f"enode://{node_id}@[fd00::1]:30304"


@pytest.mark.parametrize("nodekey", ["", "abc", "zz" * 32, "00" * 32, "ff" * 32])
def test_invalid_nodekey_is_refused_without_echoing_it(nodekey: str) -> None:
    with pytest.raises(AnsibleFilterError) as excinfo:
        geth.geth_enode_id(nodekey)
    if len(nodekey) >= 8:
        assert nodekey not in str(excinfo.value)


def test_enode_without_public_address_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="host_public_address"):
        geth.geth_enode(KNOWN_PAIRS[0][0], "", 30303)


def test_extradata_for_one_sealer_is_vanity_address_seal() -> None:
    extradata = geth.clique_extradata(["0x71562B71999873DB5B286DF957AF199EC94617F7"])
    raw = bytes.fromhex(extradata[2:])
    assert len(raw) == 32 + 20 + 65
    assert raw[:32] == bytes(32)
    assert raw[32:52] == bytes.fromhex("71562b71999873db5b286df957af199ec94617f7")
    assert raw[52:] == bytes(65)


def test_extradata_for_three_sealers_lists_them_sorted() -> None:
    sealers = [
        "0x3616be06d68dd22886505e9c2caaa9eca84564b8",
        "71562b71999873db5b286df957af199ec94617f7",
        "0x0000000000000000000000000000000000000abc",
    ]
    raw = bytes.fromhex(geth.clique_extradata(sealers)[2:])
    assert len(raw) == 32 + 3 * 20 + 65
    assert raw[:32] == bytes(32)
    assert raw[32:92] == bytes.fromhex(
        "0000000000000000000000000000000000000abc"
        "3616be06d68dd22886505e9c2caaa9eca84564b8"
        "71562b71999873db5b286df957af199ec94617f7"
    )
    assert raw[92:] == bytes(65)


def test_extradata_does_not_depend_on_inventory_order() -> None:
    a, b = "0x" + "11" * 20, "0x" + "22" * 20
    assert geth.clique_extradata([a, b]) == geth.clique_extradata([b, a])


@pytest.mark.parametrize(
    ("sealers", "message"),
    [
        ([], "sealer list is empty"),
        ("0x" + "11" * 20, "expected a list"),
        (["0x1234"], "'0x1234' is not an Ethereum address"),
        (["0x" + "11" * 20, "0x" + "11" * 20], "listed twice"),
    ],
)
def test_bad_sealer_lists_are_refused_with_the_reason(sealers: object, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        geth.clique_extradata(sealers)  # type: ignore[arg-type]
