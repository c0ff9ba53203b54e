"""The JSON API against the real contracts on an in-process EVM: figures must equal the chain's own state."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from web3 import Web3

from heliogrid_stats.api import create_app
from heliogrid_stats.models import Block, Energy, HourlyPoint, Meter, Network, Node, Sale, Summary
from heliogrid_stats.views import format_units


def chain_totals(market, meters: list[str], buyers: list[str]) -> dict:
    states = [market.meter_state(m) for m in meters]
    return {
        "produced_wh": sum(s[5] for s in states),
        "sold_kwh": sum(s[6] for s in states),
        "bought_kwh": sum(market.market.functions.purchasedKWh(b).call() for b in buyers),
        "tokens": market.token.functions.totalSupply().call(),
    }


def test_energy_totals_equal_contract_state(client, sync, market, trading):
    sync()
    energy = client.get("/api/v1/energy").json()
    expected = chain_totals(market, trading["meters"], trading["owners"])
    assert energy["produced_wh"] == expected["produced_wh"] == 9_100 + 2_500 + 7_000
    assert energy["produced_kwh"] == pytest.approx(expected["produced_wh"] / 1000)
    assert energy["sold_kwh"] == expected["sold_kwh"] == 9 + 2 + 7
    assert energy["bought_kwh"] == expected["bought_kwh"] == 5
    assert int(energy["tokens_minted"]) == expected["tokens"]
    assert Decimal(energy["tokens_minted_display"]) == Decimal(expected["tokens"]) / 10**18
    assert (energy["meters"], energy["active_meters"], energy["purchases"]) == (3, 3, 2)


def test_meter_shows_its_production_and_last_report_time(client, sync, market, trading):
    sync()
    meter = trading["meters"][0]
    body = client.get(f"/api/v1/meters/{meter.lower()}").json()
    owner, capacity, active, registered, last_report, total_wh, credited = market.meter_state(meter)
    assert body["address"] == meter
    assert (body["owner"], body["capacity_watts"], body["active"]) == (owner, capacity, active)
    assert (body["total_wh"], body["credited_kwh"], body["reports"]) == (total_wh, credited, 2)
    assert body["last_report_at"] == last_report
    assert body["registered_at"] == registered


def test_deactivated_meter_is_listed_as_inactive(client, sync, market, trading):
    market.deactivate(trading["meters"][1])
    sync()
    body = client.get(f"/api/v1/meters/{trading['meters'][1]}").json()
    assert body["active"] is False
    assert client.get("/api/v1/energy").json()["active_meters"] == 2


def test_top_producers_are_ordered_by_energy_reported(client, sync, trading):
    sync()
    top = client.get("/api/v1/producers/top", params={"limit": 2}).json()
    assert [m["address"] for m in top] == [trading["meters"][0], trading["meters"][2]]
    assert [m["total_wh"] for m in top] == [9_100, 7_000]


def test_sales_feed_lists_purchases_newest_first_and_pages(client, sync, market, trading):
    sync()
    sales = client.get("/api/v1/sales").json()
    owners = trading["owners"]
    expected = [(owners[0], owners[1], 2), (owners[1], owners[0], 3)]
    assert [(s["buyer"], s["seller"], s["kwh"]) for s in sales] == expected
    assert int(sales[1]["cost"]) == 3 * 2 * 10**17
    older = client.get(
        "/api/v1/sales", params={"before_block": sales[0]["block_number"], "before_log": sales[0]["log_index"]}
    ).json()
    assert older == sales[1:]


def test_sales_paging_needs_both_cursor_parts(client):
    response = client.get("/api/v1/sales", params={"before_block": 3})
    assert response.status_code == 422
    assert "before_log" in response.json()["detail"]


def test_hourly_production_is_bucketed_by_block_hour(client, sync, market, trading):
    sync()
    points = client.get("/api/v1/production/hourly", params={"hours": 48}).json()
    assert sum(p["produced_wh"] for p in points) == 9_100 + 2_500 + 7_000
    assert sum(p["credited_kwh"] for p in points) == 18
    assert sum(p["bought_kwh"] for p in points) == 5
    assert all(p["hour"] % 3600 == 0 for p in points)
    # the two rounds of reports were an hour apart, so they fall into two different hours
    assert len([p for p in points if p["produced_wh"]]) == 2


def test_network_shows_head_gas_per_block_and_producer(client, sync, w3, trading):
    sync()
    network = client.get("/api/v1/network").json()
    head = w3.eth.get_block("latest")
    assert network["head"] == network["indexed"] == head["number"]
    assert network["lag"] == 0
    assert network["head_time"] == head["timestamp"]
    newest = network["recent_blocks"][0]
    assert (newest["number"], newest["hash"], newest["gas_used"]) == (
        head["number"],
        head["hash"].to_0x_hex(),
        head["gasUsed"],
    )
    for block in network["recent_blocks"][:5]:
        assert block["gas_used"] == w3.eth.get_block(block["number"])["gasUsed"]
    coinbase = Web3.to_checksum_address(head["miner"])
    assert [(s["address"], s["last_block"]) for s in network["signers"]] == [(coinbase, head["number"])]
    assert network["pending_transactions"] == 0


def test_average_block_time_uses_the_last_n_blocks(client, sync, market, config):
    for gap in (5, 5, 5, 5, 5, 60):
        market.travel(gap)
    sync()
    head = market.w3.eth.get_block("latest")
    earlier = market.w3.eth.get_block(head["number"] - config.block_time_window)
    expected = (head["timestamp"] - earlier["timestamp"]) / config.block_time_window
    assert client.get("/api/v1/network").json()["average_block_time"] == pytest.approx(expected)


def test_indexing_again_adds_only_new_events(client, sync, market, trading):
    sync()
    before = client.get("/api/v1/energy").json()
    sync()
    assert client.get("/api/v1/energy").json() == before
    market.travel(3600)
    market.report(trading["meters"][1], 4_000)
    sync()
    after = client.get("/api/v1/energy").json()
    assert after["produced_wh"] == before["produced_wh"] + 1_500
    assert after["reports"] == before["reports"] + 1


def test_reorg_replaces_events_of_abandoned_blocks(client, sync, market, trading):
    sync()
    fork = market.tester.take_snapshot()
    market.travel(3600)
    market.report(trading["meters"][1], 5_000)  # on the branch that will be abandoned
    sync()
    assert client.get("/api/v1/energy").json()["produced_wh"] == 21_100
    market.revert(fork)
    market.travel(3600)
    market.report(trading["meters"][1], 3_000)
    market.tester.mine_blocks(3)  # the new branch is longer, as the canonical one is
    sync()
    energy = client.get("/api/v1/energy").json()
    assert energy["produced_wh"] == 9_100 + 3_000 + 7_000
    assert client.get(f"/api/v1/meters/{trading['meters'][1]}").json()["total_wh"] == 3_000
    assert client.app.state.stats.indexer.status.reorgs == 1
    head = market.w3.eth.get_block("latest")
    assert client.get("/api/v1/blocks", params={"limit": 1}).json()[0]["hash"] == head["hash"].to_0x_hex()


@pytest.fixture
def confirmed(config, w3):
    """The app keeping its index 2 blocks behind the head, as it does by default."""
    app = create_app(replace(config, confirmations=2), w3=w3, run_indexer=False)
    with TestClient(app) as client:
        app.state.stats.indexer.check_chain()
        yield client


def test_reorg_within_the_confirmations_never_reaches_the_index(confirmed, market, trading, monkeypatch):
    indexer = confirmed.app.state.stats.indexer
    rebuilds = []
    monkeypatch.setattr(indexer.store, "rebuild_aggregates", lambda: rebuilds.append(1))
    market.travel(3600)  # on the common trunk: either branch may report at once
    indexer.run_until_synced()
    fork = market.tester.take_snapshot()
    market.report(trading["meters"][1], 5_000)
    market.tester.mine_blocks(1)  # the report is 1 block deep, 2 blocks above the fork: never indexed
    indexer.run_until_synced()
    assert confirmed.get("/api/v1/energy").json()["produced_wh"] == 9_100 + 2_500 + 7_000
    market.revert(fork)
    market.report(trading["meters"][1], 3_000)
    market.tester.mine_blocks(3)
    indexer.run_until_synced()
    assert confirmed.get("/api/v1/energy").json()["produced_wh"] == 9_100 + 3_000 + 7_000
    assert (indexer.status.reorgs, rebuilds) == (0, [])
    head = market.w3.eth.get_block("latest")["number"]
    assert confirmed.get("/api/v1/network").json()["indexed"] == head - 2


def test_reorg_deeper_than_the_confirmations_is_rolled_back(confirmed, market, trading):
    indexer = confirmed.app.state.stats.indexer
    indexer.run_until_synced()
    fork = market.tester.take_snapshot()
    market.travel(3600)
    market.report(trading["meters"][1], 5_000)
    market.tester.mine_blocks(2)  # the report is 2 blocks deep (5 above the fork): indexed
    indexer.run_until_synced()
    assert confirmed.get("/api/v1/energy").json()["produced_wh"] == 9_100 + 5_000 + 7_000
    market.revert(fork)
    market.travel(3600)
    market.report(trading["meters"][1], 3_000)
    market.tester.mine_blocks(4)
    indexer.run_until_synced()
    assert confirmed.get("/api/v1/energy").json()["produced_wh"] == 9_100 + 3_000 + 7_000
    assert confirmed.get(f"/api/v1/meters/{trading['meters'][1]}").json()["total_wh"] == 3_000
    assert indexer.status.reorgs == 1


def test_summary_holds_every_section_of_the_page(client, sync, trading):
    sync()
    summary = client.get("/api/v1/summary").json()
    assert set(summary) == {"network", "nodes", "energy", "top_producers", "meters", "recent_sales", "hourly", "market"}
    assert len(summary["meters"]) == 3
    assert summary["energy"] == client.get("/api/v1/energy").json()


@pytest.mark.parametrize("address", ["0x1234", "not-an-address", "0x" + "g" * 40])
def test_malformed_meter_address_is_refused_with_the_value(client, address):
    response = client.get(f"/api/v1/meters/{address}")
    assert response.status_code == 422
    assert address in response.json()["detail"]


def test_unknown_meter_is_not_found(client, sync):
    sync()
    response = client.get("/api/v1/meters/0x" + "11" * 20)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("path", "params"),
    [("/api/v1/blocks", {"limit": 0}), ("/api/v1/blocks", {"limit": 501}), ("/api/v1/production/hourly", {"hours": 0})],
)
def test_out_of_range_limits_are_refused(client, path, params):
    assert client.get(path, params=params).status_code == 422


def test_openapi_describes_the_api(client):
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/v1/summary",
        "/api/v1/network",
        "/api/v1/nodes",
        "/api/v1/energy",
        "/api/v1/meters",
        "/api/v1/meters/{address}",
        "/api/v1/producers/top",
        "/api/v1/sales",
        "/api/v1/production/hourly",
        "/api/v1/market",
        "/api/v1/market/depth",
        "/api/v1/market/offers",
        "/api/v1/market/prices",
    ):
        assert "get" in spec["paths"][path]
    assert "Summary" in spec["components"]["schemas"]


def test_health_reports_unavailable_until_the_indexer_has_polled(client, sync):
    assert client.get("/healthz").status_code == 503
    sync()
    body = client.get("/healthz").json()
    assert body["ok"] is True
    assert body["indexed"] == body["head"]


def test_page_is_rendered_with_the_figures_and_security_headers(client, sync, trading):
    sync()
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert '<span id="sold-kwh">18</span>' in html
    assert '<span id="produced-kwh">18.600</span>' in html
    assert trading["meters"][0] in html
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_format_units_keeps_every_digit():
    assert format_units(1_500_000_000_000_000_000) == "1.5"
    assert format_units(18 * 10**18) == "18"
    assert format_units(1) == "0.000000000000000001"
    assert format_units(0) == "0"


def test_every_endpoint_answers_in_its_documented_shape(client, sync, trading):
    sync()
    meter = trading["meters"][0]
    shapes = {
        "/api/v1/summary": Summary,
        "/api/v1/network": Network,
        "/api/v1/energy": Energy,
        f"/api/v1/meters/{meter}": Meter,
        "/api/v1/blocks": list[Block],
        "/api/v1/nodes": list[Node],
        "/api/v1/meters": list[Meter],
        "/api/v1/producers/top": list[Meter],
        "/api/v1/sales": list[Sale],
        "/api/v1/production/hourly": list[HourlyPoint],
    }
    for path, shape in shapes.items():
        body = client.get(path).content
        parsed = TypeAdapter(shape).validate_json(body, strict=True)  # raises, naming the field, on a mismatch
        # and nothing undocumented: the model dumped back gives the same JSON
        assert json.loads(TypeAdapter(shape).dump_json(parsed)) == json.loads(body)
