"""The market statistics against the real contracts on an in-process EVM.

The scenario (heliogrid_testing.stats_chain.trade_market): offers at three prices, partial buys signed by the meters'
keys over two days, a price change and a cancel. Every expected figure is computed here from the chain itself --
getOffer, purchasedKWh, token balances, block timestamps -- and from the purchases the driver made, never from the
events the indexer reads.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from pydantic import TypeAdapter

from heliogrid_stats.models import DepthLevel, Market, Offer, PricePoint, Sale
from heliogrid_stats.store import EventRow, Store
from heliogrid_stats.views import format_units

HOUR, DAY = 3600, 86400


def chain_offers(market) -> dict[int, tuple]:
    """offer id -> (seller, meter, remainingKWh, pricePerKWh, open), read with getOffer."""
    return {i: market.offer(i) for i in range(1, market.next_offer_id())}


def chain_depth(market) -> list[tuple[str, int, int]]:
    levels: dict[int, tuple[int, int]] = {}
    for _seller, _meter, remaining, price, is_open in chain_offers(market).values():
        if is_open:
            kwh, offers = levels.get(price, (0, 0))
            levels[price] = (kwh + remaining, offers + 1)
    return [(str(price), kwh, offers) for price, (kwh, offers) in sorted(levels.items())]


def chain_trades(market, purchases) -> list[dict]:
    """The driver's purchases with the offer's seller and price from getOffer and the block's time, newest first."""
    trades = []
    for p in purchases:
        seller, _meter, _remaining, price, _open = market.offer(p.offer_id)
        trades.append(
            dict(
                offer_id=p.offer_id,
                buyer=p.buyer,
                seller=seller,
                kwh=p.kwh,
                price=str(price),
                cost=str(p.kwh * price),
                timestamp=market.w3.eth.get_block(p.block)["timestamp"],
            )
        )
    return trades[::-1]  # the driver bought in chain order


def chain_buckets(market, purchases, size: int) -> list[dict]:
    buckets: dict[int, dict] = {}
    for t in chain_trades(market, purchases):
        start = t["timestamp"] - t["timestamp"] % size
        b = buckets.setdefault(start, {"start": start, "kwh": 0, "trades": 0, "cost": 0, "prices": []})
        b["kwh"] += t["kwh"]
        b["trades"] += 1
        b["cost"] += int(t["cost"])
        b["prices"].append(int(t["price"]))
    return [
        {
            "start": b["start"],
            "kwh": b["kwh"],
            "trades": b["trades"],
            "cost": str(b["cost"]),
            "average_price": str(b["cost"] // b["kwh"]),
            "low_price": str(min(b["prices"])),
            "high_price": str(max(b["prices"])),
        }
        for _, b in sorted(buckets.items())
    ]


def test_depth_shows_open_kwh_and_offers_per_price_as_get_offer_does(client, sync, market, market_trading):
    sync()
    depth = client.get("/api/v1/market/depth").json()
    expected = chain_depth(market)
    assert [(d["price"], d["open_kwh"], d["offers"]) for d in depth] == expected
    # the scenario's book: 2 offers at 0.2 (one partly bought), the rest of one at 0.3, one at 0.5
    assert expected == [(str(2 * 10**17), 2 + 2, 2), (str(3 * 10**17), 1, 1), (str(5 * 10**17), 1, 1)]
    assert [d["price_display"] for d in depth] == ["0.2", "0.3", "0.5"]
    assert [d["price"] for d in client.get("/api/v1/market/depth", params={"limit": 1}).json()] == [str(2 * 10**17)]


def test_open_offers_are_listed_cheapest_then_oldest_with_what_remains(client, sync, market, market_trading):
    sync()
    offers = client.get("/api/v1/market/offers").json()
    chain = {i: o for i, o in chain_offers(market).items() if o[4]}
    assert sorted(o["offer_id"] for o in offers) == sorted(chain)
    assert [(o["price"], o["offer_id"]) for o in offers] == sorted((str(c[3]), i) for i, c in chain.items())
    for o in offers:
        seller, meter, remaining, price, _ = chain[o["offer_id"]]
        assert (o["seller"], o["meter"], o["remaining_kwh"], o["price"]) == (seller, meter, remaining, str(price))
    assert len(client.get("/api/v1/market/offers", params={"limit": 2}).json()) == 2


def test_market_totals_equal_the_chain(client, sync, market, market_trading):
    sync()
    body = client.get("/api/v1/market").json()
    offers = chain_offers(market).values()
    buyers = set(market_trading["owners"]) | set(market_trading["meters"])
    bought = sum(market.market.functions.purchasedKWh(b).call() for b in buyers)
    trades = chain_trades(market, market_trading["purchases"])
    cost = sum(int(t["cost"]) for t in trades)
    assert body["open_kwh"] == sum(o[2] for o in offers if o[4]) == 6
    assert body["open_offers"] == sum(1 for o in offers if o[4]) == 4
    # a cancelled offer is closed with kWh left; a sold-out one is closed with none
    assert body["offers_cancelled"] == sum(1 for o in offers if not o[4] and o[2]) == 1
    assert body["cancelled_kwh"] == sum(o[2] for o in offers if not o[4]) == 2
    assert body["best_price"] == str(min(o[3] for o in offers if o[4]))
    assert body["bought_kwh"] == bought == sum(t["kwh"] for t in trades)
    assert body["purchases"] == len(market_trading["purchases"])
    assert body["sales_cost"] == str(cost)
    assert body["average_price"] == str(cost // bought)
    assert body["offers_created"] == market.next_offer_id() - 1


def test_recent_trades_name_offer_buyer_seller_price_and_block_time(client, sync, market, market_trading):
    sync()
    trades = client.get("/api/v1/sales", params={"limit": 500}).json()
    fields = ("offer_id", "buyer", "seller", "kwh", "price", "cost", "timestamp")
    assert [{k: t[k] for k in fields} for t in trades] == chain_trades(market, market_trading["purchases"])
    # the newest were bought with the meters' own keys
    assert trades[0]["buyer"] in market_trading["meters"]


@pytest.mark.parametrize(("bucket", "size", "count"), [("hour", HOUR, 336), ("day", DAY, 366)])
def test_price_over_time_is_volume_weighted_per_bucket(client, sync, market, market_trading, bucket, size, count):
    sync()
    points = client.get("/api/v1/market/prices", params={"bucket": bucket, "count": count}).json()
    expected = chain_buckets(market, market_trading["purchases"], size)
    assert [{k: p[k] for k in expected[0]} for p in points] == expected
    assert all(p["average_price_display"] == format_units(int(p["average_price"])) for p in points)
    if bucket == "day":  # kWh traded per day: the scenario trades on two UTC days at least
        assert len(points) >= 2
        assert sum(p["kwh"] for p in points) == sum(p.kwh for p in market_trading["purchases"])


def test_each_meter_shows_exported_kwh_and_kwh_it_bought_on_the_market(client, sync, market, market_trading):
    sync()
    meters = {m["address"]: m for m in client.get("/api/v1/meters").json()}
    for address in market_trading["meters"]:
        total_wh = market.meter_state(address)[5]
        spent = market_trading["funded"][address] - market.token.functions.balanceOf(address).call()
        m = meters[address]
        assert m["total_wh"] == total_wh
        assert m["bought_kwh"] == market.market.functions.purchasedKWh(address).call() > 0
        assert m["bought_cost"] == str(spent)
        assert client.get(f"/api/v1/meters/{address}").json() == m


def test_summary_market_section_equals_the_market_endpoint(client, sync, market_trading):
    sync()
    summary = client.get("/api/v1/summary").json()
    assert summary["market"] == client.get("/api/v1/market").json()
    daily = client.get("/api/v1/market/prices", params={"bucket": "day", "count": 30}).json()
    assert summary["market"]["daily"] == daily


def test_reorg_rebuilds_depth_and_trades_from_the_new_branch(client, sync, market, market_trading):
    sync()
    fork = market.tester.take_snapshot()
    meters, owners = market_trading["meters"], market_trading["owners"]
    market.cancel(owners[0], 4)  # abandoned: offer 4 stays open on the canonical branch
    market.buy(meters[0], 6, 2)
    sync()
    assert client.get("/api/v1/market").json()["open_offers"] == 2
    market.revert(fork)
    market.buy(meters[2], 4, 1)
    market.tester.mine_blocks(4)
    sync()
    assert client.app.state.stats.indexer.status.reorgs == 1
    depth = client.get("/api/v1/market/depth").json()
    assert [(d["price"], d["open_kwh"], d["offers"]) for d in depth] == chain_depth(market)
    body = client.get("/api/v1/market").json()
    assert body["offers_cancelled"] == 1
    assert body["bought_kwh"] == sum(p.kwh for p in market_trading["purchases"]) + 1


def test_an_index_of_the_previous_schema_gains_the_market_tables_from_its_events(
    client, sync, config, market, market_trading
):
    sync()
    before = client.get("/api/v1/market").json()
    path = config.database
    old = sqlite3.connect(path)
    with old:  # what a schema-1 index holds: no market tables, their totals unknown
        for table in ("offers", "depth", "buyers", "trade_buckets"):
            old.execute(f"DROP TABLE {table}")
        old.execute("DELETE FROM totals WHERE name IN ('offers_cancelled','cancelled_kwh','open_offers','open_kwh')")
        old.execute("UPDATE meta SET value='1' WHERE key='schema'")
    old.close()
    upgraded = Store(path)
    assert upgraded.get_meta("schema") == "2"
    assert [(d["price_key"], d["open_kwh"], d["offers"]) for d in upgraded.depth(100)] == [
        (price.zfill(78), kwh, n) for price, kwh, n in chain_depth(market)
    ]
    upgraded.close()
    assert client.get("/api/v1/market").json() == before


def test_an_index_of_a_newer_schema_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "index.sqlite3"
    Store(path).set_meta("schema", "99")
    with pytest.raises(RuntimeError, match="schema 99, newer than"):
        Store(path)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/market/depth", {"limit": 0}),
        ("/api/v1/market/depth", {"limit": 501}),
        ("/api/v1/market/offers", {"limit": 501}),
        ("/api/v1/market/prices", {"bucket": "week"}),
        ("/api/v1/market/prices", {"bucket": "day", "count": 367}),
        ("/api/v1/market/prices", {"bucket": "hour", "count": 0}),
    ],
)
def test_market_lists_are_bounded(client, path, params):
    assert client.get(path, params=params).status_code == 422


def test_hours_beyond_two_weeks_are_refused_naming_the_limit(client):
    response = client.get("/api/v1/market/prices", params={"bucket": "hour", "count": 337})
    assert response.status_code == 422
    assert "at most 336" in response.json()["detail"]


def test_market_endpoints_answer_in_their_documented_shape(client, sync, market_trading):
    sync()
    shapes = {
        "/api/v1/market": Market,
        "/api/v1/market/depth": list[DepthLevel],
        "/api/v1/market/offers": list[Offer],
        "/api/v1/market/prices": list[PricePoint],
        "/api/v1/sales": list[Sale],
    }
    for path, shape in shapes.items():
        body = client.get(path).content
        parsed = TypeAdapter(shape).validate_json(body, strict=True)
        assert json.loads(TypeAdapter(shape).dump_json(parsed)) == json.loads(body)
        assert json.loads(body), f"{path} answered nothing for a chain with trades"


def test_page_is_rendered_with_the_market_before_its_script_runs(client, sync, market, market_trading):
    sync()
    html = client.get("/").text
    open_offers = [o for o in chain_offers(market).values() if o[4]]
    assert f'<p class="big" id="open-offers">{len(open_offers)}</p>' in html
    for price, kwh, offers in chain_depth(market):
        row = f'<tr data-price="{price}"><td class="num">{format_units(int(price))}</td><td class="num">{kwh}</td>'
        assert row + f'<td class="num">{offers}</td></tr>' in html
    for meter in market_trading["meters"]:
        bought = market.market.functions.purchasedKWh(meter).call()
        assert f'data-col="bought-kwh" data-value="{bought}">{bought}</td>' in html


def test_the_book_stays_consistent_when_events_arrive_for_closed_or_unknown_offers(tmp_path):
    """A sale of an offer already sold out (or never announced) and a cancel of a closed one take nothing off the book
    twice: open offers and open kWh still match the offers that are open."""
    store = Store(tmp_path / "index.sqlite3")
    seller, meter, buyer = ("0x" + f"{i:040x}" for i in (1, 2, 3))

    def event(n: int, name: str, **args) -> EventRow:
        return EventRow(n, 0, f"0x{n:064x}", f"0x{n:064x}", 1_700_000_000 + n, name, args)

    price = 2 * 10**17
    sale = {"buyer": buyer, "seller": seller, "kWh": 1, "cost": price}
    with store.transaction():
        store.add_events(
            [
                event(1, "OfferCreated", offerId=1, seller=seller, meter=meter, kWh=1, pricePerKWh=price),
                event(2, "OfferCreated", offerId=2, seller=seller, meter=meter, kWh=3, pricePerKWh=price),
                event(3, "EnergyPurchased", offerId=1, **sale),
                event(4, "EnergyPurchased", offerId=1, **sale),
                event(5, "EnergyPurchased", offerId=9, **sale),
                event(6, "OfferCancelled", offerId=1),
            ]
        )
    totals = store.totals()
    assert (totals["open_offers"], totals["open_kwh"], totals["offers_cancelled"]) == (1, 3, 0)
    assert [(d["open_kwh"], d["offers"]) for d in store.depth(10)] == [(3, 1)]
    assert [o["offer_id"] for o in store.open_offers(10)] == [2]
    assert totals["bought_kwh"] == 3  # every sale the chain reported counts as bought


def test_a_market_without_offers_has_no_prices_and_an_empty_book(client, sync, market):
    sync()
    body = client.get("/api/v1/market").json()
    assert (body["open_offers"], body["open_kwh"], body["best_price"], body["average_price"]) == (0, 0, None, None)
    assert (body["depth"], body["hourly"], body["daily"]) == ([], [], [])
    assert client.get("/api/v1/market/offers").json() == []
    assert '<p class="big" id="best-price">\u2013</p>' in client.get("/").text
