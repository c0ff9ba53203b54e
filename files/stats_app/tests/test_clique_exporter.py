"""The clique signer-health exporter (heliogrid_stats.clique_exporter) against a made-up chain served by a fake geth
JSON-RPC endpoint: per-signer in-turn, out-of-turn and missed turns, the head, and what it says when the node is
down. The real geth answers the same methods in the molecule scenario and the lab."""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from heliogrid_stats import clique_exporter

A, B, C = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20  # sorted: A at offset 0, B at 1, C at 2


def chain(sealers: list[tuple[str, int]], start_time: int = 1_700_000_000) -> dict[int, tuple[dict, str]]:
    """Blocks 1..n: (header, signer) where sealers[i] = (signer, difficulty) seals block i + 1, 5 s apart."""
    return {
        i + 1: ({"number": hex(i + 1), "difficulty": hex(d), "timestamp": hex(start_time + 5 * (i + 1))}, s)
        for i, (s, d) in enumerate(sealers)
    }


@pytest.fixture
def node() -> Iterator[tuple[str, dict]]:
    """A fake geth: answers eth_blockNumber, eth_getBlockByNumber, clique_status/getSigners/getSigner from `state`."""
    state: dict = {"blocks": {}, "signers": [C, A, B]}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            calls = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            blocks = state["blocks"]
            answers = {
                "eth_blockNumber": lambda p: hex(max(blocks, default=0)),
                "clique_status": lambda p: {"inturnPercent": 50.0, "numBlocks": len(blocks), "sealerActivity": {}},
                "clique_getSigners": lambda p: state["signers"],
                "eth_getBlockByNumber": lambda p: blocks[int(p[0], 16)][0],
                "clique_getSigner": lambda p: blocks[int(p[0], 16)][1],
            }
            reply = [{"jsonrpc": "2.0", "id": c["id"], "result": answers[c["method"]](c["params"])} for c in calls]
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()


def metrics(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[:1] != "#"}


def test_each_signer_counts_its_in_turn_and_out_of_turn_blocks(node: tuple[str, dict]) -> None:
    url, state = node
    # Block n is A's turn when n % 3 == 0, B's when 1, C's when 2: blocks 1..6 all in turn, then C seals 7 out of turn.
    state["blocks"] = chain([(B, 2), (C, 2), (A, 2), (B, 2), (C, 2), (A, 2), (C, 1)])
    found = metrics(clique_exporter.render(clique_exporter.snapshot(url)))
    assert found[f'heliogrid_clique_signer_in_turn_blocks{{signer="{A}"}}'] == 2
    assert found[f'heliogrid_clique_signer_in_turn_blocks{{signer="{C}"}}'] == 2
    assert found[f'heliogrid_clique_signer_out_of_turn_blocks{{signer="{C}"}}'] == 1
    assert found[f'heliogrid_clique_signer_out_of_turn_blocks{{signer="{A}"}}'] == 0
    assert found[f'heliogrid_clique_signer_last_sealed_block{{signer="{C}"}}'] == 7
    assert found["heliogrid_clique_head_number"] == 7
    assert found["heliogrid_clique_head_timestamp_seconds"] == 1_700_000_035
    assert found["heliogrid_clique_signers"] == 3
    assert found["heliogrid_clique_up"] == 1


def test_a_stopped_sealer_misses_its_turns_in_a_row_and_the_others_none(node: tuple[str, dict]) -> None:
    url, state = node
    # A stops after block 3: its turns at 6 and 9 are sealed out of turn by the others.
    state["blocks"] = chain([(B, 2), (C, 2), (A, 2), (B, 2), (C, 2), (B, 1), (B, 2), (C, 2), (C, 1), (B, 2)])
    found = metrics(clique_exporter.render(clique_exporter.snapshot(url)))
    assert found[f'heliogrid_clique_signer_missed_turns_in_a_row{{signer="{A}"}}'] == 2
    assert found[f'heliogrid_clique_signer_missed_turns{{signer="{A}"}}'] == 2
    assert found[f'heliogrid_clique_signer_missed_turns_in_a_row{{signer="{B}"}}'] == 0
    assert found[f'heliogrid_clique_signer_missed_turns_in_a_row{{signer="{C}"}}'] == 0
    assert found[f'heliogrid_clique_signer_last_sealed_block{{signer="{A}"}}'] == 3


def test_a_sealer_back_in_turn_resets_its_missed_turns_in_a_row(node: tuple[str, dict]) -> None:
    url, state = node
    state["blocks"] = chain([(B, 2), (C, 2), (B, 1), (B, 2), (C, 2), (A, 2)])
    found = metrics(clique_exporter.render(clique_exporter.snapshot(url)))
    assert found[f'heliogrid_clique_signer_missed_turns_in_a_row{{signer="{A}"}}'] == 0
    assert found[f'heliogrid_clique_signer_missed_turns{{signer="{A}"}}'] == 1


def test_only_the_window_of_latest_blocks_is_counted(node: tuple[str, dict]) -> None:
    url, state = node
    state["blocks"] = chain([(B, 2), (C, 2), (B, 1), (B, 2), (C, 2), (A, 2)])
    found = metrics(clique_exporter.render(clique_exporter.snapshot(url, window=3)))
    assert found[f'heliogrid_clique_signer_missed_turns{{signer="{A}"}}'] == 0
    assert found[f'heliogrid_clique_signer_in_turn_blocks{{signer="{B}"}}'] == 1


def test_a_node_that_does_not_answer_is_reported_down_on_the_metrics_page() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), clique_exporter.make_handler("http://127.0.0.1:9/", 64))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/metrics", timeout=10) as response:
            found = metrics(response.read().decode())
    finally:
        server.shutdown()
    assert found == {"heliogrid_clique_up": 0}


def test_a_listen_address_without_a_port_is_refused_with_the_value() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"'127\.0\.0\.1', expected ADDRESS:PORT"):
        clique_exporter.parse_listen("127.0.0.1")


@pytest.mark.geth
@pytest.mark.slow
def test_a_real_geth_clique_chain_is_read_with_its_one_signer_always_in_turn(tmp_path) -> None:
    from heliogrid_testing.devchain import DevChain, GethNotBuilt, geth_binary

    try:
        geth_binary()
    except GethNotBuilt as exc:
        pytest.fail(str(exc))
    chain = DevChain(tmp_path / "devchain")  # one sealer, a block a second, and a non-sealing node with the clique API
    chain.start()
    try:
        time.sleep(3)
        found = metrics(clique_exporter.render(clique_exporter.snapshot(chain.rpc_url)))
    finally:
        chain.stop()
    signer = chain.sealer.address.lower()
    head = found["heliogrid_clique_head_number"]
    assert head >= 2
    assert found["heliogrid_clique_signers"] == 1
    assert found[f'heliogrid_clique_signer_in_turn_blocks{{signer="{signer}"}}'] == min(head, 64)
    assert found[f'heliogrid_clique_signer_out_of_turn_blocks{{signer="{signer}"}}'] == 0
    assert found[f'heliogrid_clique_signer_missed_turns{{signer="{signer}"}}'] == 0
    assert found[f'heliogrid_clique_signer_last_sealed_block{{signer="{signer}"}}'] == head
    assert abs(time.time() - found["heliogrid_clique_head_timestamp_seconds"]) < 30
