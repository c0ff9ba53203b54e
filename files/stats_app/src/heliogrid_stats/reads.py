"""Reads of the index, off the event loop: a few reader threads, each with its own read-only SQLite connection, and
the answers built there kept as encoded JSON until the index changes.

The event loop also carries geth's ethstats reports and pings: nothing that waits for SQLite runs on it, so a slow
query delays only the request that made it. An answer (the summary the page polls, `/api/v1/market`, a page of
meters...) is built once per change of the index (the writer's `generation`; for the summary, also of the node
list) and at least every `max_age` seconds (what depends on the clock: nodes going offline, chart windows), then
served as it is to every request that asks for it meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from heliogrid_stats.ethstats import NodeRegistry
from heliogrid_stats.store import Store
from heliogrid_stats.views import Views

T = TypeVar("T")

READER_THREADS = 4  # reads at once; more wait for a free thread, the event loop does not
MAX_AGE = 1.0  # seconds an answer is served for at most
MAX_ANSWERS = 256  # answers kept (each query string is one); all are dropped when there would be more


def encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Answer:
    """One built answer: the value (the page's template reads the summary's) and its JSON."""

    version: tuple[int, ...]  # what it was built from: the index generation (and the node list's version)
    built: float  # time.monotonic()
    value: Any
    body: bytes


class Reads:
    def __init__(
        self,
        views: Views,
        writer: Store,
        registry: NodeRegistry,
        *,
        threads: int = READER_THREADS,
        max_age: float = MAX_AGE,
    ) -> None:
        self.views = views
        self.writer = writer
        self.registry = registry
        self.max_age = max_age
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="stats-read")
        self._answers: dict[Hashable, Answer] = {}
        self._building: dict[Hashable, asyncio.Future[Answer]] = {}

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a reader thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args))

    async def json(self, fn: Callable[..., Any], *args: Hashable) -> bytes:
        """`fn(*args)` (a Views method) as JSON, built in a reader thread, or as built before at this generation."""
        answer = await self._answer(
            (fn.__name__, args), (self.writer.generation,), lambda: functools.partial(fn, *args)
        )
        return answer.body

    async def summary(self) -> Answer:
        """Everything the page shows; rebuilt when the index or the node list changed."""
        # The registry is read here, on the event loop that updates it; the index in the reader thread.
        version = (self.writer.generation, self.registry.version)
        return await self._answer(
            ("summary",), version, lambda: functools.partial(self.views.summary, self.registry.snapshot())
        )

    async def _answer(self, key: Hashable, version: tuple[int, ...], build: Callable[[], Callable[[], Any]]) -> Answer:
        """The answer under `key` if it was built at `version` less than `max_age` ago; else a new one from
        `build()()`. One build per key at a time: requests meanwhile wait for it (and for another one if it was
        started before the index changed)."""
        while True:
            cached = self._answers.get(key)
            if cached is not None and _covers(cached, version) and time.monotonic() - cached.built < self.max_age:
                return cached
            building = self._building.get(key)
            if building is None:
                building = self._building[key] = asyncio.ensure_future(self._build(key, version, build()))
            # shield: a client that goes away does not cancel the build the others wait for
            answer = await asyncio.shield(building)
            if _covers(answer, version):
                return answer

    async def _build(self, key: Hashable, version: tuple[int, ...], fn: Callable[[], Any]) -> Answer:
        try:
            answer = await self.run(_built, version, fn)
            if len(self._answers) >= MAX_ANSWERS and key not in self._answers:
                self._answers.clear()
            self._answers[key] = answer
            return answer
        finally:
            del self._building[key]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _built(version: tuple[int, ...], fn: Callable[[], Any]) -> Answer:
    value = fn()
    return Answer(version, time.monotonic(), value, encode(value))


def _covers(answer: Answer, version: tuple[int, ...]) -> bool:
    """`answer` was built from the index (and node list) at `version` or later: the counters only grow."""
    return all(built >= wanted for built, wanted in zip(answer.version, version, strict=True))
