"""Against a real geth 1.13 Clique chain: signers from clique_getSigner, and geth's own --ethstats reporter.

Uses the lead's single-sealer dev chain (heliogrid_testing/devchain.py) and the geth archive built by
`make geth`; skipped when that archive is not in the cache.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from eth_account import Account
from fastapi.testclient import TestClient
from heliogrid_testing.devchain import GETH_VERSION, DevChain, GethNotBuilt, geth_binary
from heliogrid_testing.ethstats_credentials import credentials_dir, node_secret
from heliogrid_testing.stats_chain import ADMIN_DELAY, REPORT_WINDOW, TARIFF, TOLERANCE, artifact
from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware, SignAndSendRawMiddlewareBuilder
from web3.utils import get_create_address

from heliogrid_stats.api import create_app
from heliogrid_stats.config import StatsConfig

pytestmark = [pytest.mark.geth, pytest.mark.slow]
METER_KEY = "0x" + "6e" * 32  # throwaway key of the test meter
MAX_CAPACITY = 2**32 - 1  # watts: about 1.19 kWh per second, so a 1 s chain can credit kWh quickly


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def geth_chain(tmp_path: Path) -> Iterator[tuple[DevChain, int]]:
    """The dev chain (a sealer and a non-sealing RPC node), both gethes reporting with --ethstats to a port the
    app will listen on, each under its node name ("sealer", "rpc") with its own secret."""
    try:
        geth_binary()
    except GethNotBuilt as exc:
        pytest.fail(str(exc))
    meter = Account.from_key(METER_KEY)
    app_port = _free_port()
    ethstats = {
        node: ["--ethstats", f"{node}:{node_secret(node)}@ws://127.0.0.1:{app_port}"] for node in ("sealer", "rpc")
    }
    chain = DevChain(tmp_path / "devchain", prefund=[meter.address], extra_args=ethstats)
    chain.start()
    try:
        yield chain, app_port
    finally:
        chain.stop()


def test_real_geth_chain_is_indexed_and_reports_over_ethstats(tmp_path, geth_chain):
    chain, port = geth_chain
    w3 = Web3(Web3.HTTPProvider(chain.rpc_url))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    sealer, meter = Account.from_key(chain.sealer.key), Account.from_key(METER_KEY)
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build([sealer, meter]), layer=0)

    def mined(*tx_hashes) -> list[dict]:
        receipts = [w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60) for tx_hash in tx_hashes]
        assert [r["status"] for r in receipts] == [1] * len(receipts)
        return receipts

    # Transactions go in batches of consecutive nonces (each one waited for alone takes about two 1 s blocks):
    # the token (given the market's address-to-be as its minter) and the market (given the token's), then the meter.
    token_art, market_art = artifact("EnergyToken"), artifact("EnergyMarket")
    nonce = w3.eth.get_transaction_count(sealer.address, "pending")
    token_address, market_address = (get_create_address(sealer.address, n) for n in (nonce, nonce + 1))
    token_tx = w3.eth.contract(abi=token_art["abi"], bytecode=token_art["bytecode"]).constructor(
        "HelioGrid Energy", "HGE", sealer.address, ADMIN_DELAY, market_address
    )
    market_tx = w3.eth.contract(abi=market_art["abi"], bytecode=market_art["bytecode"]).constructor(
        token_address, sealer.address, ADMIN_DELAY, sealer.address, TARIFF, TOLERANCE, REPORT_WINDOW
    )
    token_receipt, receipt = mined(
        token_tx.transact({"from": sealer.address}), market_tx.transact({"from": sealer.address})
    )
    assert token_receipt["contractAddress"] == token_address
    token = w3.eth.contract(address=token_address, abi=token_art["abi"])
    market = w3.eth.contract(address=receipt["contractAddress"], abi=market_art["abi"])
    contracts = tmp_path / "contracts.json"
    contracts.write_text(
        json.dumps(
            {
                "chainId": chain.chain_id,
                "market": {"address": market.address, "abi": market_art["abi"], "block": receipt["blockNumber"]},
            }
        )
    )
    (registered,) = mined(
        market.functions.registerMeter(meter.address, sealer.address, MAX_CAPACITY).transact({"from": sealer.address}),
    )
    # At MAX_CAPACITY one second since the registration allows far more than 2.5 kWh; transact() estimates the
    # gas at the head's time, so the head must be past the registration's block (was a fixed 3 s sleep).
    registered_at = w3.eth.get_block(registered["blockNumber"])["timestamp"]
    wait_for("a block after the registration", lambda: w3.eth.get_block("latest")["timestamp"] > registered_at)
    (report,) = mined(market.functions.reportProduction(2_500).transact({"from": meter.address}))

    config = StatsConfig(
        contracts_file=contracts,
        database=tmp_path / "stats.sqlite3",
        rpc_url=chain.rpc_url,
        listen_port=port,
        signer_source="clique",
        ethstats_credentials_dir=credentials_dir(tmp_path / "ethstats.d", ("sealer", "rpc")),
        poll_interval=0.5,
        block_time_window=5,
    )
    app = create_app(config)  # its own HTTPProvider, as in production
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        client = TestClient(app)  # requests through the app object; the server thread runs the indexer

        def synced():
            network = client.get("/api/v1/network").json()
            indexed = network["indexed"] or 0
            # the index stays `confirmations` blocks behind the head, and one poll behind that at most
            caught_up = indexed >= report["blockNumber"] and indexed >= w3.eth.block_number - config.confirmations - 1
            return network if caught_up else None

        network = wait_for("the index to reach the head", synced)
        sealed = [b for b in network["recent_blocks"] if b["number"] > 0]
        assert sealed
        assert {b["signer"] for b in sealed} == {sealer.address}  # recovered from the seal, not the zero coinbase
        assert w3.eth.get_block(sealed[0]["number"])["miner"] == "0x" + "00" * 20
        assert network["signers"][0]["address"] == sealer.address
        assert network["signers"][0]["authorised"] is True
        assert network["inturn_percent"] == pytest.approx(100.0)
        assert network["average_block_time"] == pytest.approx(1.0, abs=0.5)
        energy = client.get("/api/v1/energy").json()
        state = market.functions.getMeter(meter.address).call()
        assert (energy["produced_wh"], energy["sold_kwh"]) == (state[5], state[6]) == (2_500, 2)
        assert int(energy["tokens_minted"]) == token.functions.totalSupply().call()

        def reported():
            nodes = client.get("/api/v1/nodes").json()
            complete = len(nodes) == 2 and all(n["peers"] is not None and n["head"] for n in nodes)
            return {n["id"]: n for n in nodes} if complete else None

        nodes = wait_for("both gethes' ethstats reports", reported, timeout=45)
        sealer_node, rpc_node = nodes["sealer"], nodes["rpc"]
        assert (sealer_node["online"], sealer_node["mining"]) == (True, True)
        assert (rpc_node["online"], rpc_node["mining"], rpc_node["syncing"]) == (True, False, False)
        assert rpc_node["peers"] == w3.net.peer_count == 1  # what the RPC node itself says: peered with the sealer
        assert sealer_node["peers"] == 1
        for node in (sealer_node, rpc_node):
            assert node["client"].startswith(f"Geth/v{GETH_VERSION}")
            assert node["network"] == str(chain.chain_id)
            assert node["head"] >= network["indexed"] - 5
            assert node["head_miner"].lower() == sealer.address.lower()  # geth's ethstats recovers the sealer too
            assert node["latency_ms"] is not None
    finally:
        server.should_exit = True
        thread.join(timeout=15)
