"""Deploy the real compiled contracts (contracts/build) on any Web3 endpoint, signing with local keys."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import TransactionNotFound
from web3.utils import get_create_address

BUILD = Path(__file__).resolve().parents[1] / "contracts" / "build"
ADMIN_DELAY = 2 * 24 * 3600  # s a new admin waits before accepting a handover
REPORT_WINDOW = 24 * 3600  # s: the most elapsed time one report may count
TARIFF = 10**18
# Throwaway test keys. The admin pauses and sets the tariff; the deployer deploys and registers meters and holds
# no other role, as in a real deployment.
ADMIN_KEY = "0x" + "a1" * 32
DEPLOYER_KEY = "0x" + "d4" * 32
METER_KEY = "0x" + "b2" * 32


def artifacts_available() -> bool:
    return (BUILD / "EnergyMarket.json").exists() and (BUILD / "EnergyToken.json").exists()


def artifact(name: str) -> dict[str, Any]:
    return json.loads((BUILD / f"{name}.json").read_text())


def submit(w3: Web3, key: str, tx: dict[str, Any], nonce: int | None = None) -> Any:
    """Sign and send `tx` (at the account's next pending nonce unless given); returns its hash."""
    account = Account.from_key(key)
    tx = {
        "from": account.address,
        "gas": 5_000_000,
        "chainId": w3.eth.chain_id,
        **tx,
        "nonce": w3.eth.get_transaction_count(account.address, "pending") if nonce is None else nonce,
    }
    if "maxFeePerGas" not in tx:
        tx["gasPrice"] = w3.eth.gas_price
    return w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)


def settled(w3: Web3, tx_hash: Any, timeout: float = 60) -> Any:
    """The transaction's receipt once a block is built on the one that holds it: what a read at 'latest' then sees.

    geth 1.13's Clique sealer can sign two blocks at one height, one without the transaction and one with it: the
    miner resubmits its work when transactions arrive, and a resubmission that comes as the previous task's timer
    fires is signed too (miner/worker.go taskLoop). A node that saw one may switch to the other (equal difficulty: a
    coin toss, core/forkchoice.go), and the transaction goes into the next block. Until a block is built on it, a
    receipt can still move and state read at 'latest' can lack it (seen on the lab in make test 2026-12-05; a dev-chain
    test failed the same way that day). eth-tester mines a block per transaction and never reorganises.
    """
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    if isinstance(w3.provider, EthereumTesterProvider):
        return receipt
    deadline = time.monotonic() + timeout
    while True:
        head = w3.eth.block_number
        if head > receipt["blockNumber"]:
            try:
                receipt = w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:  # between the two blocks of a reorganisation: read it again
                pass
            else:
                canonical = w3.eth.get_block(receipt["blockNumber"])["hash"]
                if canonical == receipt["blockHash"] and w3.eth.block_number > receipt["blockNumber"]:
                    return receipt
        if time.monotonic() > deadline:
            raise TimeoutError(f"transaction {tx_hash.to_0x_hex()}: no block was built on its block within {timeout} s")
        time.sleep(0.1)


def mined(w3: Web3, *tx_hashes: Any) -> list[Any]:
    """The receipts of transactions sent together (on a Clique chain they share a block), each one successful and
    settled (see `settled`)."""
    receipts = [settled(w3, tx_hash) for tx_hash in tx_hashes]
    for tx_hash, receipt in zip(tx_hashes, receipts, strict=True):
        assert receipt["status"] == 1, f"transaction {tx_hash.to_0x_hex()} failed"
    return receipts


def send(w3: Web3, key: str, tx: dict[str, Any]) -> Any:
    return mined(w3, submit(w3, key, tx))[0]


def call(w3: Web3, key: str, fn: Any) -> Any:
    return send(w3, key, _call_tx(key, fn))


def _call_tx(key: str, fn: Any) -> dict[str, Any]:
    return fn.build_transaction({"from": Account.from_key(key).address, "gas": 5_000_000, "nonce": 0})


def _deploy_tx(w3: Web3, key: str, name: str, *args: Any) -> dict[str, Any]:
    art = artifact(name)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    return factory.constructor(*args).build_transaction(
        {"from": Account.from_key(key).address, "gas": 6_000_000, "nonce": 0}
    )


def deploy(w3: Web3, key: str, name: str, *args: Any) -> Any:
    receipt = send(w3, key, _deploy_tx(w3, key, name, *args))
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact(name)["abi"])


def setup_market(
    w3: Web3, workdir: Path, meter: str, owner: str, capacity_watts: int, tolerance: int = 10, ask_price: int = 0
) -> dict[str, Any]:
    """Token + market deployed by DEPLOYER_KEY for ADMIN_KEY, the meter registered, a deployment record written."""
    admin, deployer = Account.from_key(ADMIN_KEY).address, Account.from_key(DEPLOYER_KEY).address
    # Sent as one batch of consecutive nonces rather than one by one: on a 1 s Clique chain every transaction
    # waited for takes about two blocks. The token names the market's address-to-be as its minter, the market the
    # token's; the deployer is the registrar.
    nonce = w3.eth.get_transaction_count(deployer, "pending")
    token_address, market_address = get_create_address(deployer, nonce), get_create_address(deployer, nonce + 1)
    token = w3.eth.contract(address=token_address, abi=artifact("EnergyToken")["abi"])
    market = w3.eth.contract(address=market_address, abi=artifact("EnergyMarket")["abi"])
    token_tx = _deploy_tx(
        w3, DEPLOYER_KEY, "EnergyToken", "HelioGrid Energy", "HGE", admin, ADMIN_DELAY, market_address
    )
    market_tx = _deploy_tx(
        w3, DEPLOYER_KEY, "EnergyMarket", token_address, admin, ADMIN_DELAY, deployer, TARIFF, tolerance, REPORT_WINDOW
    )
    register_tx = _call_tx(DEPLOYER_KEY, market.functions.registerMeter(meter, owner, capacity_watts))
    deployed = mined(
        w3,
        *(submit(w3, DEPLOYER_KEY, tx, nonce + i) for i, tx in enumerate((token_tx, market_tx, register_tx))),
    )
    assert [r["contractAddress"] for r in deployed[:2]] == [token_address, market_address]
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
