"""Clique signer health for Prometheus, read from a node's local JSON-RPC (the stats node: sealers serve no HTTP-RPC).

Standard library only, so the monitoring role runs this one file with the system's python3 (no virtualenv):
    python3 clique_exporter.py --rpc-url http://127.0.0.1:8545 --listen 127.0.0.1:9730

At each scrape it asks the node, in one JSON-RPC batch, for `clique_status`, `clique_getSigners` and, for the last
`window` blocks, each header and its signer (`clique_getSigner`). geth's clique_status gives only an overall in-turn
percentage; per signer this exporter counts in-turn blocks (difficulty 2), out-of-turn blocks (difficulty 1) and
missed turns: a block at height n whose in-turn signer, sorted_signers[n % len(signers)] as in geth's clique, did
not seal it in turn (a turn nobody takes also stalls the head, which the head metrics show).

The node needs the `clique` API on HTTP-RPC (playbooks/network.yml gives it to the stats node).
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIFF_IN_TURN = 2
WINDOW = 64  # clique_status looks at the last 64 blocks too


class RpcError(Exception):
    pass


def rpc_batch(url: str, calls: list[tuple[str, list[Any]]], timeout: float = 5.0) -> list[Any]:
    """Send `calls` as one JSON-RPC batch; the results in the calls' order. Raises RpcError on any error."""
    body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)])
    if not url.startswith(("http://", "https://")):
        raise RpcError(f"--rpc-url is {url!r}, expected an http(s) URL of the node's JSON-RPC")
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the operator's own node
            replies = json.loads(response.read())
    except (OSError, ValueError) as error:
        raise RpcError(f"{url}: {error}") from error
    if not isinstance(replies, list):
        raise RpcError(f"{url}: expected a batch reply (a list), got {str(replies)[:200]}")
    by_id = {r.get("id"): r for r in replies}
    results = []
    for i, (method, _params) in enumerate(calls):
        reply = by_id.get(i) or {}
        if "error" in reply or "result" not in reply:
            raise RpcError(f"{method}: {reply.get('error', 'no reply')}")
        results.append(reply["result"])
    return results


@dataclass
class SignerHealth:
    in_turn: int = 0
    out_of_turn: int = 0
    missed_turns: int = 0
    missed_turns_in_a_row: int = 0
    last_sealed_block: int = -1


@dataclass
class Snapshot:
    head_number: int
    head_timestamp: int
    inturn_percent: float
    signers: dict[str, SignerHealth] = field(default_factory=dict)


def snapshot(url: str, window: int = WINDOW) -> Snapshot:
    """Read the chain's signer health from the node at `url`."""
    head_hex, status, signers = rpc_batch(
        url, [("eth_blockNumber", []), ("clique_status", []), ("clique_getSigners", [])]
    )
    head = int(head_hex, 16)
    numbers = list(range(max(1, head - window + 1), head + 1))  # the genesis has no signer
    calls: list[tuple[str, list[Any]]] = []
    for n in numbers:
        calls += [("eth_getBlockByNumber", [hex(n), False]), ("clique_getSigner", [hex(n)])]
    replies = rpc_batch(url, calls) if numbers else []
    headers = replies[0::2]
    sealed_by = [s.lower() for s in replies[1::2]]
    return build(head, headers, sealed_by, [s.lower() for s in signers], float(status.get("inturnPercent", 0)))


def build(head: int, headers: list[dict], sealed_by: list[str], signers: list[str], inturn_percent: float) -> Snapshot:
    """Per-signer counts over `headers` (ascending numbers, ending at `head`), each sealed by sealed_by[i]."""
    ordered = sorted(signers)  # geth orders signers by address bytes: the same as lowercase hex
    health = {s: SignerHealth() for s in ordered}
    for header, sealer in zip(headers, sealed_by, strict=True):
        number = int(header["number"], 16)
        in_turn = int(header["difficulty"], 16) == DIFF_IN_TURN
        if sealer in health:
            h = health[sealer]
            h.last_sealed_block = max(h.last_sealed_block, number)
            if in_turn:
                h.in_turn += 1
            else:
                h.out_of_turn += 1
        if ordered:
            due = health[ordered[number % len(ordered)]]
            if in_turn and sealer == ordered[number % len(ordered)]:
                due.missed_turns_in_a_row = 0
            else:
                due.missed_turns += 1
                due.missed_turns_in_a_row += 1
    head_timestamp = int(headers[-1]["timestamp"], 16) if headers else 0
    return Snapshot(head, head_timestamp, inturn_percent, health)


def render(snap: Snapshot | None, error: str = "") -> str:
    """The Prometheus text exposition of `snap` (None: the node did not answer; only the up gauge then)."""
    lines = [
        "# HELP heliogrid_clique_up 1 when the node answered the last scrape's clique and block queries",
        "# TYPE heliogrid_clique_up gauge",
        f"heliogrid_clique_up {0 if snap is None else 1}",
    ]
    if snap is None:
        return "\n".join([*lines, f"# error: {error}"[:500].replace("\n", " ")]) + "\n"
    gauges: list[tuple[str, str, float]] = [
        ("head_number", "The node's head block number", snap.head_number),
        ("head_timestamp_seconds", "Timestamp of the head block (head age: time() minus this)", snap.head_timestamp),
        (
            "head_age_seconds",
            "Seconds since the head block's timestamp, at the scrape",
            max(0.0, time.time() - snap.head_timestamp),
        ),
        ("inturn_percent", "clique_status: percentage of in-turn blocks in the last 64", snap.inturn_percent),
        ("signers", "Authorised signers at the head (clique_getSigners)", len(snap.signers)),
    ]
    for name, text, value in gauges:
        lines += [
            f"# HELP heliogrid_clique_{name} {text}",
            f"# TYPE heliogrid_clique_{name} gauge",
            f"heliogrid_clique_{name} {value}",
        ]
    per_signer: list[tuple[str, str, Callable[[SignerHealth], int]]] = [
        ("signer_in_turn_blocks", "In-turn blocks (difficulty 2) the signer sealed in the window", lambda h: h.in_turn),
        (
            "signer_out_of_turn_blocks",
            "Out-of-turn blocks (difficulty 1) the signer sealed in the window",
            lambda h: h.out_of_turn,
        ),
        ("signer_missed_turns", "The signer's turns in the window it did not seal in turn", lambda h: h.missed_turns),
        (
            "signer_missed_turns_in_a_row",
            "The signer's latest turns it did not seal in turn, in a row",
            lambda h: h.missed_turns_in_a_row,
        ),
        (
            "signer_last_sealed_block",
            "Number of the last block the signer sealed in the window (-1: none)",
            lambda h: h.last_sealed_block,
        ),
    ]
    for name, text, value_of in per_signer:
        lines += [f"# HELP heliogrid_clique_{name} {text}", f"# TYPE heliogrid_clique_{name} gauge"]
        lines += [f'heliogrid_clique_{name}{{signer="{s}"}} {value_of(h)}' for s, h in snap.signers.items()]
    return "\n".join(lines) + "\n"


def make_handler(url: str, window: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics")
                return
            try:
                body = render(snapshot(url, window))
            except (RpcError, KeyError, TypeError, ValueError) as error:
                body = render(None, str(error))
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"--listen is {value!r}, expected ADDRESS:PORT such as 127.0.0.1:9730")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rpc-url", default="http://127.0.0.1:8545", help="the node's HTTP-RPC, with the clique API")
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 9730), help="ADDRESS:PORT to serve on")
    parser.add_argument("--window", type=int, default=WINDOW, help="blocks counted back from the head (default 64)")
    args = parser.parse_args(argv)
    if args.window < 1:
        parser.error(f"--window is {args.window}, expected 1 or more blocks")
    server = ThreadingHTTPServer(args.listen, make_handler(args.rpc_url, args.window))
    server.serve_forever()


if __name__ == "__main__":
    main()
