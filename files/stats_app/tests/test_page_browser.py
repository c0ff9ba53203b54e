"""End to end: the page in Debian's headless Chromium shows the chain's own numbers once its script ran."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
import uvicorn

from conftest import RESULTS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


VOID = {"meta", "link", "br", "img", "input", "hr", "source", "wbr", "col", "area", "base", "embed", "track"}


class Page(HTMLParser):
    """Text of elements with an id, the meter rows' data-value, and the bars of each chart."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.meter_wh: dict[str, int] = {}
        self.bars: dict[str, int] = {}
        self.body: dict[str, str | None] = {}
        self._open: list[str | None] = []  # id (or None) of every open element
        self._meter: str | None = None
        self._chart: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag not in VOID:
            self._open.append(a.get("id"))
        if a.get("id"):
            self.by_id.setdefault(a["id"] or "", "")
            if "chart" in (a.get("class") or ""):
                self._chart = a["id"]
        if tag == "tr" and a.get("data-meter"):
            self._meter = a["data-meter"]
        if tag == "td" and a.get("data-col") == "total-wh" and self._meter:
            self.meter_wh[self._meter] = int(a["data-value"] or 0)
        if tag == "rect" and self._chart:
            self.bars[self._chart] = self.bars.get(self._chart, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID or not self._open:
            return
        closed = self._open.pop()
        if closed is not None and closed == self._chart:
            self._chart = None

    def handle_data(self, data: str) -> None:
        for element in self._open:  # text counts for every enclosing element that has an id
            if element is not None:
                self.by_id[element] += data

    def close(self) -> None:
        super().close()
        self.by_id = {k: v.strip() for k, v in self.by_id.items()}


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


def chromium(tmp_path: Path, *args: str) -> str:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--virtual-time-budget=4000",
        *args,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def test_page_in_chromium_shows_the_chain_figures(tmp_path, served, market, trading):
    page = Page()
    page.feed(chromium(tmp_path, "--dump-dom", served))
    page.close()
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
        target = RESULTS / name
        target.unlink(missing_ok=True)
        chromium(tmp_path, f"--window-size={size}", f"--screenshot={target}", served)
        assert target.stat().st_size > 10_000
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
