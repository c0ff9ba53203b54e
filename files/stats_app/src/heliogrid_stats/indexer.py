"""Incremental indexing: each step reads only the blocks after the last one indexed.

A step takes the next range of at most `batch_size` blocks, fetches the market's logs for it with one
eth_getLogs, fetches the headers it needs (the recent `block_history` blocks, and any block holding
a market event, for its timestamp) and writes everything in one SQLite transaction, together with the
cursor. A crash between steps therefore loses nothing and indexes nothing twice.

Reorgs: before extending the index, the parent hash of the next block is compared with the stored
hash of the last block. On a mismatch the indexer walks back to the newest block whose hash still
matches, forgets everything above it and re-indexes from there. Clique reorgs are rare and shallow.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes
from web3 import Web3

from heliogrid_stats.chain import ChainReader, RawLog
from heliogrid_stats.deployment import Deployment
from heliogrid_stats.store import EventRow, Store

log = logging.getLogger(__name__)


class ChainMismatchError(RuntimeError):
    """The node serves another chain than the deployment record describes, or the index was built for another."""


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | HexBytes):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class EventDecoder:
    """Turns raw market logs into EventRows using the ABI from the deployment record."""

    def __init__(self, w3: Web3, deployment: Deployment) -> None:
        contract = w3.eth.contract(address=deployment.market_address, abi=deployment.market_abi)
        self._by_topic = {}
        for abi in deployment.market_abi:
            if abi.get("type") == "event" and not abi.get("anonymous"):
                self._by_topic["0x" + event_abi_to_log_topic(abi).hex()] = contract.events[abi["name"]]()

    def decode(self, raw: RawLog, timestamp: int) -> EventRow | None:
        topics = raw.entry["topics"]
        if not topics:
            return None
        event = self._by_topic.get("0x" + bytes(topics[0]).hex())
        if event is None:  # an event this ABI does not know (e.g. from a later contract version)
            return None
        decoded = event.process_log(raw.entry)
        args = {k: _plain(v) for k, v in decoded["args"].items()}
        return EventRow(raw.block_number, raw.log_index, raw.block_hash, raw.tx_hash, timestamp, decoded["event"], args)


@dataclass
class IndexerStatus:
    head: int | None = None
    indexed: int | None = None
    last_poll: float | None = None
    last_error: str | None = None  # for the log; /healthz shows only that there is one
    stopped: bool = False  # a chain mismatch: indexing will not resume by itself
    reorgs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Indexer:
    def __init__(
        self,
        chain: ChainReader,
        store: Store,
        deployment: Deployment,
        *,
        batch_size: int = 200,
        confirmations: int = 0,
        block_history: int = 10_000,
    ) -> None:
        self.chain = chain
        self.store = store
        self.deployment = deployment
        self.batch_size = batch_size
        self.confirmations = confirmations
        self.block_history = block_history
        self.decoder = EventDecoder(chain.w3, deployment)
        self.status = IndexerStatus()

    def check_chain(self) -> None:
        """Refuse to index a chain other than the deployment's, or to mix two chains in one index."""
        chain_id = self.chain.chain_id()
        if chain_id != self.deployment.chain_id:
            raise ChainMismatchError(
                f"node at the RPC URL serves chain id {chain_id}, "
                f"expected {self.deployment.chain_id} from the deployment record"
            )
        identity = f"{chain_id}:{self.deployment.market_address}"
        stored = self.store.get_meta("identity")
        if stored is None:
            self.store.set_meta("identity", identity)
        elif stored != identity:
            raise ChainMismatchError(
                f"index {self.store.path} was built for {stored}, expected {identity}: "
                "point `database` at a new file or delete this one"
            )

    def _find_fork(self, last: int) -> int:
        """Newest indexed block that is still on the canonical chain."""
        number = last
        floor = max(last - self.block_history, -1)
        while number > floor:
            stored = self.store.block_hash(number)
            if stored is None:  # not kept (catch-up skipped or pruned it): assume settled
                return number
            if self.chain.blocks([number])[0].hash == stored:
                return number
            number -= 1
        raise ChainMismatchError(
            f"no indexed block in the last {self.block_history} matches the chain: "
            "the node switched chains; delete the index to rebuild it"
        )

    def step(self) -> int:
        """Index the next range of blocks; returns how many blocks it covered (0: up to date)."""
        head = self.chain.head()
        target = head - self.confirmations
        self.status.head, self.status.last_poll = head, time.time()
        last = self.store.last_indexed()
        if last is None:
            last = self.deployment.market_block - 1
        if last >= target:
            self._refresh_network(head)
            return 0
        start, end = last + 1, min(last + self.batch_size, target)
        logs = self.chain.logs(self.deployment.market_address, start, end)
        wanted = set(range(max(start, target - self.block_history + 1), end + 1))
        wanted.update(entry.block_number for entry in logs)
        if last >= 0 and self.store.block_hash(last) is not None:
            wanted.add(start)
        headers = {b.number: b for b in self.chain.blocks(sorted(wanted))}
        first = headers.get(start)
        if first is not None and last >= 0:
            expected_parent = self.store.block_hash(last)
            if expected_parent is not None and first.parent_hash != expected_parent:
                fork = self._find_fork(last)
                if fork == last:  # block `last` still matches: the node changed its head between our calls
                    raise RuntimeError(
                        f"node answered inconsistently: block {start} has parent "
                        f"{first.parent_hash}, block {last} is {expected_parent}; retrying"
                    )
                log.warning("reorg: block %d no longer matches, re-indexing from %d", last, fork + 1)
                with self.store.transaction():
                    self.store.rollback_to(fork)
                    self.store.set_meta("last_block", str(fork))
                self.status.reorgs += 1
                self.status.indexed = fork
                return 0
        for entry in logs:
            if headers[entry.block_number].hash != entry.block_hash:
                log.info("block %d changed while indexing it; retrying", entry.block_number)
                return 0
        events = [e for e in (self.decoder.decode(r, headers[r.block_number].timestamp) for r in logs) if e]
        with self.store.transaction():
            self.store.add_blocks(headers[n] for n in sorted(headers) if n >= target - self.block_history + 1)
            self.store.add_events(events)
            self.store.set_meta("last_block", str(end))
            self.store.prune_blocks(target - self.block_history + 1)
        self.status.indexed = end
        if end >= target:
            self._refresh_network(head)
        return end - last

    def _refresh_network(self, head: int) -> None:
        """Figures that are not in blocks: sealers, their recent activity, the pool."""
        network = {
            "head": head,
            "pending": self.chain.pending_transactions(),
            "clique_signers": self.chain.clique_signers(),
            "clique_status": self.chain.clique_status(),
            "updated": int(time.time()),
        }
        with self.store.transaction():
            self.store.set_meta("network", json.dumps(network))
        self.status.indexed = self.store.last_indexed()

    def run_until_synced(self, max_steps: int = 100_000) -> None:
        """Step until the index reaches the head (tests, the benchmark, first start)."""
        for _ in range(max_steps):
            if self.step() == 0 and (self.status.indexed or -1) >= (self.status.head or 0) - self.confirmations:
                return
        raise RuntimeError(f"index not synced after {max_steps} steps")
