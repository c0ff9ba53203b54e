"""End to end: the page in Debian's headless Chromium shows the chain's own numbers once its script ran."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import uvicorn
from heliogrid_testing.stats_chain import RESULTS
from heliogrid_testing.stats_page import CHROMIUM, render, screenshot

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(app, sync, trading) -> Iterator[str]:
    """The app on a loopback port, its index synced with the traded chain."""
    sync()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


def test_page_in_chromium_shows_the_chain_figures(tmp_path, served, market, trading):
    page = render(served, tmp_path / "chromium-profile")
    # the script ran: it stamps the body and draws the charts as SVG
    assert page.body.get("data-rendered"), "page script did not render"
    w3 = market.w3
    meters = trading["meters"]
    states = {m: market.meter_state(m) for m in meters}
    assert int(page.by_id["head"]) == w3.eth.block_number
    assert Decimal(page.by_id["produced-kwh"]) == Decimal(sum(s[5] for s in states.values())) / 1000
    assert int(page.by_id["sold-kwh"]) == sum(s[6] for s in states.values())
    bought = sum(market.market.functions.purchasedKWh(o).call() for o in trading["owners"])
    assert int(page.by_id["bought-kwh"]) == bought
    assert Decimal(page.by_id["tokens-minted"]) == Decimal(market.token.functions.totalSupply().call()) / 10**18
    assert int(page.by_id["meter-count"]) == len(meters)
    assert page.meter_wh == {m: s[5] for m, s in states.items()}
    assert page.bars["hourly-chart"] == 2  # two hours with reports
    assert page.bars["gas-chart"] >= 10
    assert re.fullmatch(r"\d+ s ago|\d+ min ago|never", page.by_id["updated"])


def test_page_screenshots_desktop_and_phone(tmp_path, served):
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name, size in (("stats_page_desktop.png", "1280,2000"), ("stats_page_phone.png", "390,2400")):
        target = screenshot(served, tmp_path / "chromium-profile", RESULTS / name, size)
        assert target.stat().st_size > 10_000
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
