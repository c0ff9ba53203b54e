"""A lean HTTP/1.1 load generator for loopback: keep-alive connections on asyncio streams, each sending GETs one
after another, timing every answer. Either as fast as the server answers (`rate=None`: the server's most), or
paced at `rate` requests/s in all (an offered load: each request's latency is counted from when it was due, so a
server that falls behind is charged for the wait too).

The benchmark and the stats app's flood test share the machine's two cores with the server they load: httpx's
client cost about as much CPU per request as the server's answer, so it measured mostly itself. This one parses
only the status line and Content-Length (the server under test sends no chunked answers).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class Load:
    """What a load run saw: every answered request's latency (seconds) and status, and the errors."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    def percentile(self, p: float) -> float:
        """The p-th percentile latency in seconds (nan without requests)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


async def get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one GET on a kept-alive connection and read its whole answer; returns the status code."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def load(
    host: str,
    port: int,
    paths: list[str],
    *,
    clients: int,
    duration: float,
    max_requests: int | None = None,
    record: bool = True,
    rate: float | None = None,
) -> Load:
    """`clients` connections GET `paths` in turn for `duration` seconds, or until `max_requests` were sent; paced at
    `rate` requests/s in all when given."""
    result = Load()
    requests = [f"GET {p} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: heliogrid-load\r\n\r\n".encode() for p in paths]
    sent = 0
    start = time.perf_counter()
    until = start + duration

    async def client(offset: int) -> None:
        nonlocal sent
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            result.errors.append(f"connect: {exc}")
            return
        i = offset
        every = None if rate is None else clients / rate
        due = start + (0 if every is None else every * offset / clients)
        try:
            while time.perf_counter() < until and (max_requests is None or sent < max_requests):
                sent += 1
                if every is None:
                    t0 = time.perf_counter()
                else:
                    t0, due = due, due + every
                    await asyncio.sleep(max(t0 - time.perf_counter(), 0))
                status = await get(reader, writer, requests[i % len(requests)])
                i += 1
                if record:
                    result.latencies.append(time.perf_counter() - t0)
                    result.statuses[status] = result.statuses.get(status, 0) + 1
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            result.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            writer.close()

    await asyncio.gather(*(client(k) for k in range(clients)))
    result.seconds = time.perf_counter() - start
    return result
