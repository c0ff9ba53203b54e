"""The deployment record the deploy role writes: which chain, where the market is, its ABI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from heliogrid_stats.config import ConfigError


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    market_address: str  # checksummed
    market_abi: list[dict[str, Any]]
    market_block: int  # block the market was deployed in: event indexing starts there


def load_deployment(path: Path) -> Deployment:
    """Read `contracts.json` (`{"chainId", "market": {"address", "abi", "block"}, ...}`) and check its shape."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"contracts_file {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"contracts_file {path}: not valid JSON: {exc}") from exc
    market = record.get("market") if isinstance(record, dict) else None
    if not isinstance(market, dict):
        raise ConfigError(f"contracts_file {path}: expected an object with a 'market' object, got {type(record)}")
    chain_id = record.get("chainId")
    address = market.get("address")
    abi = market.get("abi")
    block = market.get("block", 0)
    if not isinstance(chain_id, int) or chain_id <= 0:
        raise ConfigError(f"contracts_file {path}: chainId: expected a positive integer, got {chain_id!r}")
    if not isinstance(address, str) or not Web3.is_address(address):
        raise ConfigError(f"contracts_file {path}: market.address: expected a 0x address, got {address!r}")
    if not isinstance(abi, list) or not any(isinstance(e, dict) and e.get("type") == "event" for e in abi):
        raise ConfigError(f"contracts_file {path}: market.abi: expected an ABI list with the market's events")
    if not isinstance(block, int) or block < 0:
        raise ConfigError(f"contracts_file {path}: market.block: expected a block number >= 0, got {block!r}")
    return Deployment(chain_id, Web3.to_checksum_address(address), abi, block)
