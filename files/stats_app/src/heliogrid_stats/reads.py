"""Reads of the index, off the event loop: a few reader threads, each with its own read-only SQLite connection, and
the summary (what the page polls) built once and served as encoded JSON until the index or the node list changes.

The event loop also carries geth's ethstats reports and pings: nothing that waits for SQLite runs on it, so a slow
query delays only the request that made it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from heliogrid_stats.ethstats import NodeRegistry
from heliogrid_stats.store import Store
from heliogrid_stats.views import Views

T = TypeVar("T")

READER_THREADS = 4  # reads at once; more wait for a free thread, the event loop does not
SUMMARY_MAX_AGE = 1.0  # seconds: the summary's time-dependent parts (nodes going offline, chart windows)


def encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Summary:
    """One built summary: the dict (for the page's template) and its JSON (for the API)."""

    key: tuple[int, int]  # (index generation, registry version) it was built at
    built: float  # time.monotonic()
    value: dict[str, Any]
    body: bytes


class Reads:
    def __init__(
        self,
        views: Views,
        writer: Store,
        registry: NodeRegistry,
        *,
        threads: int = READER_THREADS,
        max_age: float = SUMMARY_MAX_AGE,
    ) -> None:
        self.views = views
        self.writer = writer
        self.registry = registry
        self.max_age = max_age
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="stats-read")
        self._summary: Summary | None = None
        self._building: asyncio.Future[Summary] | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a reader thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))

    async def json(self, fn: Callable[..., Any], *args: Any) -> bytes:
        """`fn(*args)` encoded as JSON, both in a reader thread."""
        return await self.run(lambda: encode(fn(*args)))

    async def summary(self) -> Summary:
        """The current summary: the cached one while neither the index nor the node list changed and it is younger
        than `max_age`, else one built in a reader thread (one build at a time; requests meanwhile share it)."""
        key = (self.writer.generation, self.registry.version)
        cached = self._summary
        if cached is not None and cached.key == key and time.monotonic() - cached.built < self.max_age:
            return cached
        if self._building is None:
            self._building = asyncio.ensure_future(self._build(key, self.registry.snapshot()))
        # shield: a client that goes away does not cancel the build the others wait for
        return await asyncio.shield(self._building)

    async def _build(self, key: tuple[int, int], nodes: list[dict[str, Any]]) -> Summary:
        try:
            built = await self.run(self._build_in_thread, key, nodes)
            self._summary = built
            return built
        finally:
            self._building = None

    def _build_in_thread(self, key: tuple[int, int], nodes: list[dict[str, Any]]) -> Summary:
        value = self.views.summary(nodes)
        return Summary(key, time.monotonic(), value, encode(value))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
