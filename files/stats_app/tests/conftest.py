"""Fixtures: the contracts deployed on an in-process EVM (heliogrid_testing/stats_chain.py), and the app on them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from heliogrid_testing.ethstats_credentials import credentials_dir
from heliogrid_testing.stats_chain import Market, SharedChain, deploy, trade, trade_market
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from heliogrid_stats.api import create_app
from heliogrid_stats.config import StatsConfig


@pytest.fixture(scope="session")
def shared_chain() -> SharedChain:
    """py-evm is slow: deploy and trade once per session, then give each test its own snapshot."""
    market = deploy(Web3(EthereumTesterProvider()))
    deployed = market.tester.take_snapshot()
    trading = trade(market)
    traded = market.tester.take_snapshot()
    market_trading = trade_market(market, trading)
    marketed = market.tester.take_snapshot()
    return SharedChain(market, deployed, traded, trading, marketed, market_trading)


@pytest.fixture
def market(shared_chain: SharedChain) -> Market:
    """The contracts freshly deployed, nothing registered yet."""
    shared_chain.market.revert(shared_chain.deployed)
    return shared_chain.market


@pytest.fixture
def w3(market: Market) -> Web3:
    return market.w3


@pytest.fixture
def trading(shared_chain: SharedChain, market: Market) -> dict:
    """The chain after `trade`."""
    market.revert(shared_chain.traded)
    return shared_chain.trading


@pytest.fixture
def market_trading(shared_chain: SharedChain, market: Market) -> dict:
    """The chain after `trade` and `trade_market`: meters buying, a cancel, two days of trades."""
    market.revert(shared_chain.marketed)
    return shared_chain.market_trading


@pytest.fixture
def contracts_file(tmp_path: Path, market: Market) -> Path:
    path = tmp_path / "contracts.json"
    path.write_text(json.dumps(market.record))
    return path


@pytest.fixture
def credentials(tmp_path: Path) -> Path:
    """The ethstats credentials directory, with a credential (heliogrid_testing.ethstats_credentials.node_secret) for
    each node name the tests report under; "pi-unknown" has none."""
    names = ("pi-kitchen", "sealer-1", "pi-1", "pi-2", "miner-1", "rpc", "pi-9", "pi-3")
    return credentials_dir(tmp_path / "ethstats.d", names)


@pytest.fixture
def config(tmp_path: Path, contracts_file: Path, credentials: Path) -> StatsConfig:
    return StatsConfig(
        contracts_file=contracts_file,
        database=tmp_path / "index" / "stats.sqlite3",
        signer_source="coinbase",
        ethstats_credentials_dir=credentials,
        block_history=1000,
        block_time_window=5,
        batch_size=7,
        # eth-tester mines a block per transaction and reorgs only when a test reverts: index up to the head, so a
        # figure equals the contract's right after the transaction (test_api's `confirmed` keeps the default).
        confirmations=0,
    )


@pytest.fixture
def app(config: StatsConfig, w3: Web3) -> FastAPI:
    return create_app(config, w3=w3, run_indexer=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def sync(app: FastAPI):
    """Bring the index up to the chain head, as the background task does."""
    indexer = app.state.stats.indexer
    indexer.check_chain()

    def run() -> None:
        indexer.run_until_synced()

    return run
