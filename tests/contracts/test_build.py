"""The build: pinned compiler and libraries, paris EVM, and artifacts that a fresh compile reproduces."""

from __future__ import annotations

import json

import pytest
from heliogrid_contracts.artifacts import BUILD_DIR, Artifact
from heliogrid_contracts.compile import collect_sources, compile_contracts, differences
from heliogrid_contracts.toolchain import Pins, ToolchainError, ensure_toolchain
from web3 import EthereumTesterProvider, Web3

from heliogrid_testing.evm import CONTRACTS_DIR, Chain, paris_tester


@pytest.fixture(scope="module")
def toolchain():
    return ensure_toolchain()


def test_recorded_artifacts_match_a_fresh_compile(toolchain) -> None:
    fresh = compile_contracts(toolchain)
    assert set(fresh) == {"EnergyMarket", "EnergyToken"}
    assert differences(fresh, BUILD_DIR) == []


def test_artifacts_record_the_pinned_compiler_and_paris(toolchain) -> None:
    pins = Pins.from_package_json(CONTRACTS_DIR / "package.json")
    for name in ("EnergyToken", "EnergyMarket"):
        compiler = json.loads((BUILD_DIR / f"{name}.json").read_text())["compiler"]
        assert compiler["version"].startswith(pins.solc + "+commit.")
        assert compiler["evmVersion"] == "paris"
        assert compiler["optimizer"] == {"enabled": True, "runs": 200}
        assert compiler["openzeppelin"] == pins.openzeppelin
    assert toolchain.solc_version.startswith(pins.solc + "+")


def test_lock_file_pins_the_versions_package_json_names() -> None:
    pins = Pins.from_package_json(CONTRACTS_DIR / "package.json")
    lock = json.loads((CONTRACTS_DIR / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/solc"]["version"] == pins.solc
    assert lock["node_modules/@openzeppelin/contracts"]["version"] == pins.openzeppelin


def test_package_json_with_a_version_range_is_rejected(tmp_path) -> None:
    (tmp_path / "package.json").write_text(
        json.dumps({"dependencies": {"solc": "^0.8.28", "@openzeppelin/contracts": "5.7.0"}})
    )
    with pytest.raises(ToolchainError, match=r"'solc' must be pinned .* got '\^0.8.28'"):
        Pins.from_package_json(tmp_path / "package.json")


def test_the_test_evm_rejects_push0_like_the_clique_chain() -> None:
    # Every contract test runs on this VM, so they all prove the bytecode needs nothing past Paris.
    w3 = Web3(EthereumTesterProvider(paris_tester()))
    sender = w3.eth.accounts[0]
    statuses = {}
    for label, init_code in (("push0", "0x5f5ff3"), ("push1", "0x60006000f3")):  # PUSHx 0, PUSHx 0, RETURN
        tx_hash = w3.eth.send_transaction({"from": sender, "data": init_code, "gas": 100_000})
        statuses[label] = w3.eth.wait_for_transaction_receipt(tx_hash)["status"]
    assert statuses == {"push0": 0, "push1": 1}


def test_contracts_run_on_the_paris_evm(chain: Chain) -> None:
    assert chain.w3.eth.get_code(chain.market.address) != b""
    assert chain.market.functions.token().call() == chain.token.address


def test_source_collection_follows_relative_and_library_imports(toolchain) -> None:
    sources = collect_sources(CONTRACTS_DIR, toolchain.node_modules)
    assert "src/EnergyMarket.sol" in sources
    assert "src/EnergyToken.sol" in sources
    assert "@openzeppelin/contracts/token/ERC20/ERC20.sol" in sources
    # ERC20.sol imports "../../utils/Context.sol": resolved against the importing file's name.
    assert "@openzeppelin/contracts/utils/Context.sol" in sources
    assert not any(".." in name for name in sources)


def test_deployed_code_check_ignores_only_immutables() -> None:
    market = Artifact.load("EnergyMarket")
    assert market.immutable_ranges, "the market embeds its token address as an immutable"
    code = bytearray(bytes.fromhex(market.deployed_bytecode.removeprefix("0x")))
    for start, length in market.immutable_ranges:
        code[start : start + length] = b"\x11" * length
    assert market.matches_code(bytes(code))
    code[1] ^= 0xFF
    assert not market.matches_code(bytes(code))
    assert not market.matches_code(bytes(code[:-1]))
