"""Configuration of the stats app: one TOML file, checked completely before anything starts."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

SIGNER_SOURCES = ("clique", "coinbase")
SECRET_ENV = "HELIOGRID_STATS_ETHSTATS_SECRET"  # noqa: S105 - the name of a variable, not a secret


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
    confirmations: int = 0  # blocks behind the head left unindexed (Clique reorgs are at most 1 deep)
    block_history: int = 10_000  # recent block headers kept for the network figures; older ones are pruned
    block_time_window: int = 100  # N of "average block time over the last N blocks"
    signer_source: str = "clique"  # "clique": clique_getSigner RPC; "coinbase": block miner field (eth-tester)
    ethstats_secret: str = field(default="", repr=False)  # never printed
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
    "ethstats_max_nodes": int,
    "node_stale_after": float,
    "page_refresh": float,
}


def _coerce(name: str, value: Any) -> Any:
    wanted = _TYPES[name]
    if wanted is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{name}: expected a file path, got {value!r}")
        return Path(value)
    if wanted is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, wanted) or isinstance(value, bool):
        raise ConfigError(f"{name}: expected {wanted.__name__}, got {value!r}")
    return value


def read_secret(path: Path) -> str:
    """Read the ethstats secret from a file that only its owner may read."""
    try:
        mode = path.stat().st_mode
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"ethstats_secret_file: cannot read {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise ConfigError(f"ethstats_secret_file: {path} has mode {oct(mode & 0o777)}, expected 0600 or stricter")
    if not secret:
        raise ConfigError(f"ethstats_secret_file: {path} is empty, expected the shared ethstats secret")
    return secret


def load_config(path: Path, environ: dict[str, str] | None = None) -> StatsConfig:
    """Parse and check the TOML file at `path`; the ethstats secret comes from a file or the environment."""
    environ = dict(os.environ) if environ is None else environ
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from exc
    secret_file = raw.pop("ethstats_secret_file", None)
    known = {f.name for f in fields(StatsConfig)} - {"ethstats_secret"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"config file {path}: unknown keys {', '.join(unknown)}; expected some of {sorted(known)}")
    for required in ("contracts_file", "database"):
        if required not in raw:
            raise ConfigError(f"config file {path}: missing required key {required!r}")
    values = {name: _coerce(name, value) for name, value in raw.items()}
    secret = environ.get(SECRET_ENV, "")
    if secret_file is not None:
        secret = read_secret(Path(_coerce("contracts_file", secret_file)))
    return StatsConfig(**values, ethstats_secret=secret)
