"""Clique's pending pool on eth-tester: what the agent broadcasts waits until the test seals a block."""

from __future__ import annotations

import contextlib
from typing import Any

from eth_utils import keccak
from eth_utils.exceptions import ValidationError
from heliogrid_agent.chain import SendRejected


def hold_until_sealed(chain: Any, pool: list[bytes]) -> None:
    """What the agent broadcasts waits in ``pool`` (the node's: it outlives an agent) until ``chain.seal()``, as on
    Clique, where a transaction is pending until the next block (eth-tester would mine each one as it arrives)."""
    broadcast = chain.send_raw

    def send_raw(raw: bytes) -> str:
        pool.append(bytes(raw))
        return "0x" + keccak(raw).hex()

    def seal() -> None:
        for raw in pool:
            # a re-broadcast of a transaction already sealed: the node refuses it (nonce too low)
            with contextlib.suppress(SendRejected, ValidationError):
                broadcast(raw)
        pool.clear()
        chain.w3.provider.ethereum_tester.mine_blocks(1)

    chain.send_raw, chain.seal = send_raw, seal
