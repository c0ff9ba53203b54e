"""The Clique genesis template of roles/clique_genesis, rendered as Ansible renders it."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest
from ansible.plugins.filter.core import FilterModule as CoreFilters

from heliogrid_testing.plugins import plugin

geth = plugin("plugins/filter/geth.py")

TEMPLATES = Path(__file__).resolve().parents[2] / "roles" / "clique_genesis" / "templates"
SEALERS = [
    "0x71562b71999873db5b286df957af199ec94617f7",
    "0x3616be06d68dd22886505e9c2caaa9eca84564b8",
    "0x0000000000000000000000000000000000000abc",
]


def render(**overrides: object) -> dict:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined)
    env.filters.update(CoreFilters().filters())
    env.filters.update(geth.FilterModule().filters())
    variables: dict[str, object] = {
        "clique_genesis_chain_id": 4242,
        "clique_genesis_period": 5,
        "clique_genesis_epoch": 30000,
        "clique_genesis_gas_limit": 30_000_000,
        "clique_genesis_timestamp": 0,
        "clique_genesis_alloc": {},
        "clique_genesis_sealer_addresses": SEALERS[:1],
    }
    variables.update(overrides)
    return json.loads(env.get_template("genesis.json.j2").render(**variables))


def test_one_sealer_genesis_extradata_is_exact() -> None:
    genesis = render(clique_genesis_sealer_addresses=SEALERS[:1])
    assert genesis["extradata"] == "0x" + "00" * 32 + "71562b71999873db5b286df957af199ec94617f7" + "00" * 65


def test_three_sealer_genesis_extradata_is_exact() -> None:
    genesis = render(clique_genesis_sealer_addresses=SEALERS)
    assert genesis["extradata"] == (
        "0x"
        + "00" * 32
        + "0000000000000000000000000000000000000abc"
        + "3616be06d68dd22886505e9c2caaa9eca84564b8"
        + "71562b71999873db5b286df957af199ec94617f7"
        + "00" * 65
    )


def test_genesis_is_clique_with_period_epoch_and_chain_id() -> None:
    config = render(clique_genesis_period=3, clique_genesis_epoch=100)["config"]
    assert config["chainId"] == 4242
    assert config["clique"] == {"period": 3, "epoch": 100}
    assert config["londonBlock"] == 0


def test_genesis_schedules_no_shanghai_or_later_fork_and_no_ttd() -> None:
    config = render()["config"]
    forbidden = {"shanghaiTime", "cancunTime", "pragueTime", "verkleTime", "terminalTotalDifficulty", "ethash"}
    assert forbidden.isdisjoint(config)


def test_genesis_gas_limit_is_hex_and_alloc_is_normalised() -> None:
    genesis = render(
        clique_genesis_gas_limit=30_000_000,
        clique_genesis_alloc={"0x3616BE06D68DD22886505E9C2CAAA9ECA84564B8": 10**21},
    )
    assert genesis["gasLimit"] == "0x1c9c380"
    assert genesis["alloc"] == {"3616be06d68dd22886505e9c2caaa9eca84564b8": {"balance": str(10**21)}}


def test_genesis_render_is_stable_across_sealer_order() -> None:
    assert render(clique_genesis_sealer_addresses=SEALERS) == render(
        clique_genesis_sealer_addresses=list(reversed(SEALERS))
    )


def test_genesis_with_bad_alloc_address_fails_naming_it() -> None:
    with pytest.raises(Exception, match="'0xnope' is not an Ethereum address"):
        render(clique_genesis_alloc={"0xnope": 1})
