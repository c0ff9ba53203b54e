"""Configuration of the stats app: one TOML file, checked completely before anything starts."""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

SIGNER_SOURCES = ("clique", "coinbase")


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names it and says what was expected."""


@dataclass(frozen=True)
class StatsConfig:
    """Everything the app reads at start; see README.md for the meaning of each key."""

    contracts_file: Path  # deployment record written by the deploy role (chainId, market address/abi/block)
    database: Path  # SQLite file holding the index; created if missing
    rpc_url: str = "http://127.0.0.1:8545"  # the stats node's loopback HTTP-RPC
    listen_host: str = "127.0.0.1"  # nginx proxies to this address
    listen_port: int = 8090
    poll_interval: float = 2.0  # seconds between indexer polls of the head
    batch_size: int = 200  # blocks per indexer step (one eth_getLogs range, one RPC batch of headers)
    confirmations: int = 2  # blocks behind the head left unindexed: reorgs this deep never reach the index
    block_history: int = 10_000  # recent block headers kept for the network figures; older ones are pruned
    block_time_window: int = 100  # N of "average block time over the last N blocks"
    signer_source: str = "clique"  # "clique": clique_getSigner RPC; "coinbase": block miner field (eth-tester)
    ethstats_credentials_dir: Path | None = None  # one sha256 credential per node name; None: no node may report
    ethstats_max_nodes: int = 256  # reporting nodes kept in memory; more are refused
    node_stale_after: float = 60.0  # seconds without a report after which a node shows as offline
    page_refresh: float = 5.0  # seconds between page refreshes in the browser

    def __post_init__(self) -> None:
        url = urlparse(self.rpc_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ConfigError(f"rpc_url: expected an http(s) URL such as http://127.0.0.1:8545, got {self.rpc_url!r}")
        if not 0 < self.listen_port < 65536:
            raise ConfigError(f"listen_port: expected 1..65535, got {self.listen_port!r}")
        positive = (
            "poll_interval",
            "batch_size",
            "block_history",
            "block_time_window",
            "ethstats_max_nodes",
            "node_stale_after",
            "page_refresh",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}: expected a positive number, got {getattr(self, name)!r}")
        if self.confirmations < 0:
            raise ConfigError(f"confirmations: expected 0 or more, got {self.confirmations!r}")
        if self.block_time_window >= self.block_history:
            raise ConfigError(
                f"block_time_window: expected less than block_history ({self.block_history}), "
                f"got {self.block_time_window}"
            )
        if self.signer_source not in SIGNER_SOURCES:
            raise ConfigError(f"signer_source: expected one of {', '.join(SIGNER_SOURCES)}, got {self.signer_source!r}")
        if self.ethstats_credentials_dir is not None:
            check_credentials_dir(self.ethstats_credentials_dir)


def check_credentials_dir(path: Path) -> None:
    """Whoever can write the credentials directory can log in as any node: only its owner (root) may."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(
            f"ethstats_credentials_dir: cannot use {path}: {exc.strerror}; expected a directory of node credentials"
        ) from exc
    if not stat.S_ISDIR(mode):
        raise ConfigError(f"ethstats_credentials_dir: {path} is not a directory")
    if mode & 0o022:
        raise ConfigError(
            f"ethstats_credentials_dir: {path} has mode {stat.filemode(mode)}, "
            "expected a directory only its owner may write (such as 0750)"
        )
    if not os.access(path, os.R_OK | os.X_OK):
        raise ConfigError(f"ethstats_credentials_dir: {path} cannot be read by this user (uid {os.getuid()})")


_TYPES: dict[str, type] = {
    "contracts_file": Path,
    "database": Path,
    "rpc_url": str,
    "listen_host": str,
    "listen_port": int,
    "poll_interval": float,
    "batch_size": int,
    "confirmations": int,
    "block_history": int,
    "block_time_window": int,
    "signer_source": str,
    "ethstats_credentials_dir": Path,
    "ethstats_max_nodes": int,
    "node_stale_after": float,
    "page_refresh": float,
}


def _coerce(name: str, value: Any) -> Any:
    wanted = _TYPES[name]
    if wanted is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{name}: expected a path, got {value!r}")
        return Path(value)
    if wanted is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, wanted) or isinstance(value, bool):
        raise ConfigError(f"{name}: expected {wanted.__name__}, got {value!r}")
    return value


def load_config(path: Path) -> StatsConfig:
    """Parse and check the TOML file at `path`."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from exc
    known = {f.name for f in fields(StatsConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"config file {path}: unknown keys {', '.join(unknown)}; expected some of {sorted(known)}")
    for required in ("contracts_file", "database"):
        if required not in raw:
            raise ConfigError(f"config file {path}: missing required key {required!r}")
    values = {name: _coerce(name, value) for name, value in raw.items()}
    return StatsConfig(**values)
