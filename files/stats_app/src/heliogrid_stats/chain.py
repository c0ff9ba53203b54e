"""Reading the chain through web3.py: block headers, market logs, Clique signers, the transaction pool.

Who sealed a Clique block is not in the block's `miner` field (geth leaves it zero); it is recovered
from the seal in `extraData`. geth exposes that as `clique_getSigner(blockHash)`, which the "clique"
signer source calls (batched). The "coinbase" source reads `miner`, for chains that record the
producer there (eth-tester in unit tests). One interface, chosen by configuration, like gpiozero's
pin factories.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import MethodUnavailable, Web3RPCError

from heliogrid_stats.store import BlockRow

log = logging.getLogger(__name__)


def _hex(value: Any) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


class SignerSource(Protocol):
    def signers_of(self, blocks: Sequence[dict[str, Any]]) -> list[str | None]: ...


class CoinbaseSigner:
    """The producer is the block's `miner` (coinbase) field."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def signers_of(self, blocks: Sequence[dict[str, Any]]) -> list[str | None]:
        return [to_checksum_address(b["miner"]) for b in blocks]


class CliqueSigner:
    """The producer is recovered by geth from the Clique seal: `clique_getSigner(hash)`."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def signers_of(self, blocks: Sequence[dict[str, Any]]) -> list[str | None]:
        if blocks and blocks[0]["number"] == 0:  # the genesis carries the signer list, not a seal
            return [None, *self.signers_of(blocks[1:])]
        hashes = [_hex(b["hash"]) for b in blocks]
        if not hashes:
            return []
        provider = self.w3.provider
        if hasattr(provider, "make_batch_request") and len(hashes) > 1:
            replies = provider.make_batch_request([("clique_getSigner", [h]) for h in hashes])
            if isinstance(replies, dict):  # the whole batch failed
                raise Web3RPCError(f"clique_getSigner batch failed: {replies.get('error')}")
            by_id = sorted(replies, key=lambda r: int(r["id"]))
            out: list[str | None] = []
            for h, reply in zip(hashes, by_id, strict=True):
                if "error" in reply:
                    raise Web3RPCError(f"clique_getSigner({h}) failed: {reply['error']}")
                out.append(to_checksum_address(reply["result"]))
            return out
        return [to_checksum_address(self.w3.manager.request_blocking("clique_getSigner", [h])) for h in hashes]


SIGNER_SOURCES = {"clique": CliqueSigner, "coinbase": CoinbaseSigner}


@dataclass(frozen=True)
class RawLog:
    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str
    entry: Any  # the web3 log entry, decoded later against the ABI


class ChainReader:
    def __init__(self, w3: Web3, signer_source: str) -> None:
        self.w3 = w3
        self.signer = SIGNER_SOURCES[signer_source](w3)
        self._batch = True

    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    def head(self) -> int:
        return self.w3.eth.block_number

    def _get_blocks(self, numbers: Sequence[int]) -> list[dict[str, Any]]:
        if self._batch and len(numbers) > 1:
            try:
                with self.w3.batch_requests() as batch:
                    for n in numbers:
                        batch.add(self.w3.eth.get_block(n))
                    return list(batch.execute())
            except TypeError as exc:  # "Batch requests are not supported by this provider"
                log.info("provider has no batch requests, fetching blocks one by one: %s", exc)
                self._batch = False
        return [self.w3.eth.get_block(n) for n in numbers]

    def blocks(self, numbers: Sequence[int]) -> list[BlockRow]:
        """Headers of `numbers` with their signers, in the order asked."""
        if not numbers:
            return []
        raw = self._get_blocks(numbers)
        signers = self.signer.signers_of(raw)
        return [
            BlockRow(
                number=b["number"],
                hash=_hex(b["hash"]),
                parent_hash=_hex(b["parentHash"]),
                timestamp=b["timestamp"],
                signer=s,
                gas_used=b["gasUsed"],
                gas_limit=b["gasLimit"],
                tx_count=len(b["transactions"]),
            )
            for b, s in zip(raw, signers, strict=True)
        ]

    def logs(self, address: str, start: int, end: int) -> list[RawLog]:
        entries = self.w3.eth.get_logs({"address": address, "fromBlock": start, "toBlock": end})
        return [
            RawLog(e["blockNumber"], _hex(e["blockHash"]), e["logIndex"], _hex(e["transactionHash"]), e)
            for e in entries
        ]

    def pending_transactions(self) -> int | None:
        """Transactions waiting in the node's pool (geth's txpool_status, else the pending block)."""
        try:
            status = self.w3.manager.request_blocking("txpool_status", [])
            return int(status["pending"], 16) + int(status["queued"], 16)
        except (MethodUnavailable, Web3RPCError, KeyError, ValueError, TypeError):
            pass
        try:
            return self.w3.eth.get_block_transaction_count("pending")
        except (Web3RPCError, ValueError):
            return None

    def clique_signers(self) -> list[str] | None:
        """The authorised sealers at the head, or None when the node does not speak Clique."""
        try:
            return [to_checksum_address(a) for a in self.w3.manager.request_blocking("clique_getSigners", [])]
        except (MethodUnavailable, Web3RPCError):
            return None

    def clique_status(self) -> dict[str, Any] | None:
        """geth's clique_status: in-turn percentage and blocks each sealer signed in the last 64."""
        try:
            status = self.w3.manager.request_blocking("clique_status", [])
        except (MethodUnavailable, Web3RPCError):
            return None
        return {
            "inturn_percent": float(status["inturnPercent"]),
            "num_blocks": int(status["numBlocks"]),
            "sealer_activity": {to_checksum_address(k): int(v) for k, v in status["sealerActivity"].items()},
        }
