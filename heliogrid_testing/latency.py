"""What the latency benchmarks share (bench/kwh_latency.py, bench/autobuy_latency.py): a watcher of the chain's head,
a polling wait and the min / median / max of a series."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from heliogrid_testing.loopback_market import rpc

OBSERVER_POLL = 0.05  # seconds between two looks at the RPC node's head


class HeadObserver(threading.Thread):
    """Watches the RPC node: its head, and ``read(head)`` at every new head, with the wall time each value of
    ``read`` was first seen (``seen``)."""

    def __init__(self, url: str, read: Callable[[int], int]) -> None:
        super().__init__(name="observer", daemon=True)
        self.url, self.read = url, read
        self.head = -1
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(OBSERVER_POLL):
            try:
                head = int(rpc(self.url, "eth_blockNumber"), 16)
                if head != self.head:
                    value = self.read(head)
                    self.head = head
                    self.seen.setdefault(value, time.time())
            except (OSError, httpx.HTTPError):
                continue


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"
