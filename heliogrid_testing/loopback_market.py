"""A loopback Clique chain with the HelioGrid contracts deployed, for the chain benchmarks.

The chain is heliogrid_testing/devchain.py (geth 1.13 from the lab's build cache: an IPC-only sealer and a
non-sealing node whose HTTP-RPC listens on 127.0.0.1, the node a Pi's agent talks to); the contracts are
deployed by the project's own deploy code (contracts/heliogrid_contracts/deploy.py), as the contracts role does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

import httpx  # noqa: E402
from eth_account import Account  # noqa: E402
from heliogrid_contracts.deploy import Deployer, DeploySpec  # noqa: E402
from web3 import Web3  # noqa: E402
from web3.middleware import ExtraDataToPOAMiddleware  # noqa: E402

from heliogrid_testing.devchain import DevChain, GethNotBuilt  # noqa: E402

TARIFF = 10**18
TOLERANCE_PERCENT = 10

__all__ = ["DevChain", "GethNotBuilt", "LoopbackMarket", "bench_key", "rpc"]


def bench_key(label: str) -> str:
    """A throwaway private key derived from a label: the same accounts every run, used nowhere else."""
    return "0x" + hashlib.sha256(f"heliogrid-bench/{label}".encode()).hexdigest()


def _post(url: str, payload: object, timeout: float) -> object:
    if not url.startswith("http://127."):  # these benchmarks talk to loopback nodes only
        raise ValueError(f"refusing to send JSON-RPC to {url}: expected a loopback http://127.x.y.z URL")
    response = httpx.post(url, json=payload, timeout=timeout)
    response.raise_for_status()
    return response.json()


def rpc(url: str, method: str, *params: Any, timeout: float = 10) -> Any:
    """One JSON-RPC call over a plain HTTP request (cheap enough to poll at 20 Hz)."""
    answer = _post(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


def rpc_batch(url: str, calls: list[tuple[str, list[Any]]], timeout: float = 60) -> list[Any]:
    """Many JSON-RPC calls in one HTTP request (geth answers batches); results (or error dicts) in call order."""
    payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    answers = {a["id"]: a for a in _post(url, payload, timeout)}
    return [answers[i].get("result", answers[i].get("error")) for i in range(len(calls))]


@dataclass
class LoopbackMarket:
    """A running dev chain (``period`` seconds per block) with the token and market deployed."""

    chain: DevChain
    w3: Web3
    record: dict[str, Any]
    record_path: Path
    deployer_key: str

    @classmethod
    def start(cls, workdir: Path, period: int, prefund: list[str], meters: list[dict[str, Any]] | None = None):
        deployer_key = bench_key("deployer")
        deployer = Account.from_key(deployer_key).address
        chain = DevChain(workdir / "chain", prefund=[deployer, *prefund], period=period).start(timeout=120)
        try:
            w3 = Web3(Web3.HTTPProvider(chain.rpc_url, request_kwargs={"timeout": 60}))
            w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
            spec = DeploySpec.from_dict(
                {
                    "token_name": "HelioGrid Energy",
                    "token_symbol": "HGE",
                    "tariff": TARIFF,
                    "tolerance_percent": TOLERANCE_PERCENT,
                    "admin": Account.from_key(bench_key("admin")).address,  # not the deployer, as in the roles
                    "meters": meters or [],
                }
            )
            record_path = workdir / "contracts.json"
            result = Deployer(w3, deployer_key, record_path, receipt_timeout=30 * period + 60).run(spec)
            assert result.record is not None
        except BaseException:
            chain.stop()
            raise
        return cls(chain, w3, result.record, record_path, deployer_key)

    @property
    def market(self) -> Any:
        return self.w3.eth.contract(address=self.record["market"]["address"], abi=self.record["market"]["abi"])

    @property
    def gas_limit_genesis(self) -> int:
        return int(self.w3.eth.get_block(0)["gasLimit"])

    def stop(self) -> None:
        self.chain.stop()
