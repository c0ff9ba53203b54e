"""Deploy the real compiled contracts (contracts/build) on any Web3 endpoint, signing with local keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

BUILD = Path(__file__).resolve().parents[3] / "contracts" / "build"
TARIFF = 10**18
ADMIN_KEY = "0x" + "a1" * 32  # throwaway test keys
METER_KEY = "0x" + "b2" * 32


def artifacts_available() -> bool:
    return (BUILD / "EnergyMarket.json").exists() and (BUILD / "EnergyToken.json").exists()


def artifact(name: str) -> dict[str, Any]:
    return json.loads((BUILD / f"{name}.json").read_text())


def send(w3: Web3, key: str, tx: dict[str, Any]) -> Any:
    account = Account.from_key(key)
    tx = {
        "from": account.address,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "gas": 5_000_000,
        "chainId": w3.eth.chain_id,
        **tx,
    }
    if "maxFeePerGas" not in tx:
        tx["gasPrice"] = w3.eth.gas_price
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction), timeout=60)
    assert receipt["status"] == 1, f"transaction failed: {tx}"
    return receipt


def call(w3: Web3, key: str, fn: Any) -> Any:
    account = Account.from_key(key)
    return send(
        w3,
        key,
        fn.build_transaction({"from": account.address, "gas": 5_000_000, "nonce": 0})
        | {"nonce": w3.eth.get_transaction_count(account.address, "pending")},
    )


def deploy(w3: Web3, key: str, name: str, *args: Any) -> Any:
    art = artifact(name)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    account = Account.from_key(key)
    tx = factory.constructor(*args).build_transaction({"from": account.address, "gas": 6_000_000, "nonce": 0})
    tx["nonce"] = w3.eth.get_transaction_count(account.address, "pending")
    receipt = send(w3, key, tx)
    return w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])


def setup_market(
    w3: Web3, workdir: Path, meter: str, owner: str, capacity_watts: int, tolerance: int = 10, ask_price: int = 0
) -> dict[str, Any]:
    """Token + market, the meter registered, a deployment record written; returns handles."""
    admin = Account.from_key(ADMIN_KEY).address
    token = deploy(w3, ADMIN_KEY, "EnergyToken", "HelioGrid Energy", "HGE", admin)
    market = deploy(w3, ADMIN_KEY, "EnergyMarket", token.address, admin, TARIFF, tolerance)
    call(w3, ADMIN_KEY, token.functions.grantRole(token.functions.MINTER_ROLE().call(), market.address))
    call(w3, ADMIN_KEY, market.functions.registerMeter(meter, owner, capacity_watts))
    if ask_price:
        call(w3, METER_KEY, market.functions.setAskPrice(ask_price))
    record = {
        "chainId": w3.eth.chain_id,
        "token": {"address": token.address, "abi": token.abi},
        "market": {"address": market.address, "abi": market.abi, "block": w3.eth.block_number},
    }
    path = workdir / "contracts.json"
    path.write_text(json.dumps(record))
    return {"token": token, "market": market, "record": path}
