"""End to end: the page in Debian's headless Chromium shows the chain's own numbers once its script ran."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal
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


@contextmanager
def _serving(app) -> Iterator[str]:
    """The app on a loopback port, in a thread; yields its page's URL."""
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


@pytest.fixture
def served(app, sync, trading) -> Iterator[str]:
    """The app, its index synced with the traded chain."""
    sync()
    with _serving(app) as url:
        yield url


@pytest.fixture
def served_market(app, sync, market_trading) -> Iterator[str]:
    """The app, its index synced with the chain after the meters' purchases (trade_market)."""
    sync()
    with _serving(app) as url:
        yield url


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
    assert page.bars["volume-chart"] == 1  # both purchases on one day
    assert page.meter_cols == {m: {"total-wh": s[5], "bought-kwh": 0} for m, s in states.items()}  # owners bought
    assert page.bars["gas-chart"] >= 10
    assert re.fullmatch(r"\d+ s ago|\d+ min ago|never", page.by_id["updated"])


def test_market_view_in_chromium_shows_the_chain_book_trades_and_meters(
    tmp_path, served_market, market, market_trading
):
    page = render(served_market, tmp_path / "chromium-profile")
    assert page.body.get("data-rendered"), "page script did not render"
    token = Decimal(10**18)
    offers = [market.offer(i) for i in range(1, market.next_offer_id())]  # (seller, meter, remaining, price, open)
    book: dict[int, list[int]] = {}
    for _seller, _meter, remaining, price, is_open in offers:
        if is_open:
            level = book.setdefault(price, [0, 0])
            level[0] += remaining
            level[1] += 1
    # open offers by price, cheapest first: price in tokens, kWh for sale, number of offers
    assert [(Decimal(p), int(k), int(n)) for p, k, n in page.rows["depth"]] == [
        (Decimal(price) / token, kwh, n) for price, (kwh, n) in sorted(book.items())
    ]
    assert int(page.by_id["open-offers"]) == sum(1 for o in offers if o[4])
    assert int(page.by_id["open-kwh"]) == sum(o[2] for o in offers if o[4])
    assert Decimal(page.by_id["best-price"]) == Decimal(min(book)) / token
    assert int(page.by_id["cancelled-kwh"]) == sum(o[2] for o in offers if not o[4])
    # recent trades, newest first: offer, kWh, price and cost as getOffer prices them
    purchases = market_trading["purchases"][::-1]
    assert [(int(r[1]), int(r[4]), Decimal(r[5]), Decimal(r[6])) for r in page.rows["sales"]] == [
        (
            p.offer_id,
            p.kwh,
            Decimal(market.offer(p.offer_id)[3]) / token,
            p.kwh * Decimal(market.offer(p.offer_id)[3]) / token,
        )
        for p in purchases
    ]
    bought = sum(p.kwh * market.offer(p.offer_id)[3] for p in purchases)
    average = Decimal(bought // sum(p.kwh for p in purchases)) / token
    assert Decimal(page.by_id["average-price"]) == average.quantize(Decimal("0.0001"), ROUND_HALF_UP)
    # per meter: what it exported (its reported total) and what its key bought on the market
    for meter in market_trading["meters"]:
        cols = page.meter_cols[meter]
        assert cols["total-wh"] == market.meter_state(meter)[5]
        assert cols["bought-kwh"] == market.market.functions.purchasedKWh(meter).call()
    # one bar per UTC hour (last 48 h) and per UTC day with trades
    times = [market.w3.eth.get_block(p.block)["timestamp"] for p in purchases]
    head = max(int(time.time()), market.now())  # the page charts the 48 h before the later of the two
    assert page.bars["price-chart"] == len({t // 3600 for t in times if t // 3600 > head // 3600 - 48})
    assert page.bars["volume-chart"] == len({t // 86400 for t in times}) >= 2


def test_page_screenshots_desktop_and_phone(tmp_path, served_market):
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name, size in (("stats_page_desktop.png", "1280,3000"), ("stats_page_phone.png", "390,3600")):
        target = screenshot(served_market, tmp_path / "chromium-profile", RESULTS / name, size)
        assert target.stat().st_size > 10_000
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
