from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from heliogrid_agent.agent import Agent
from heliogrid_agent.config import parse_config
from heliogrid_agent.reporter import Reporter
from heliogrid_agent.sensors.base import Reading, Sensor
from heliogrid_agent.store import Store
from heliogrid_agent.ui import UiServer, is_lan


class Constant(Sensor):
    def read(self) -> Reading:
        return Reading(720.0)


@pytest.fixture
def ui(tmp_path, clock, fake_chain, account):
    cfg = parse_config({"meter": {"sensor": "simulated"}})
    store = Store(tmp_path / "agent.db")
    reporter = Reporter(fake_chain, store, account, expected_chain_id=1337, clock=clock)
    agent = Agent(cfg, Constant(), store, reporter, clock)
    server = UiServer(agent, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{server.port}", agent, fake_chain
    server.stop()


def request(url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data, {"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_page_is_served(ui):
    base, _agent, _chain = ui
    with urllib.request.urlopen(base + "/", timeout=5) as response:
        assert "HelioGrid meter" in response.read().decode()


def test_status_shows_power_today_sold_and_node_state(ui, clock):
    base, agent, chain = ui
    for _ in range(3):
        clock.advance(5)
        agent.sample_once()
    agent.reporter.step()
    status, body = request(base + "/api/status")
    assert status == 200
    assert body["power_watts"] == 720.0
    assert body["today_kwh"] == pytest.approx(0.002)
    assert body["sold_kwh"] == 0
    assert body["node"] == {"up": True, "syncing": False, "block": chain.block_number(), "peers": 2}
    assert body["selling_paused"] is False


def test_pause_and_resume_selling(ui):
    base, agent, _chain = ui
    assert request(base + "/api/selling", {"paused": True}) == (200, {"selling_paused": True})
    assert agent.store.selling_paused()
    assert request(base + "/api/selling", {"paused": False})[0] == 200
    assert not agent.store.selling_paused()


def test_pause_with_a_non_boolean_is_rejected(ui):
    base, _agent, _chain = ui
    status, body = request(base + "/api/selling", {"paused": "yes"})
    assert status == 400
    assert "expected true or false" in body["error"]


def test_cross_origin_post_is_refused(ui):
    base, agent, _chain = ui
    status, body = request(base + "/api/selling", {"paused": True}, {"Origin": "http://evil.example"})
    assert status == 403
    assert "cross-origin" in body["error"]
    assert not agent.store.selling_paused()


def test_form_post_is_refused(ui):
    base, _agent, _chain = ui
    req = urllib.request.Request(
        base + "/api/selling", b"paused=true", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5)
    assert exc.value.code == 415


def test_buy_through_the_page_sends_approve_and_buy(ui):
    base, agent, chain = ui
    seller = "0x" + "33" * 20
    chain.offers[1] = chain.get_offer(1).__class__(1, seller, seller, 4, 10**18, True)
    chain.balances[agent.reporter.address.lower()] = 5 * 10**18
    agent.reporter.step()
    status, offers = request(base + "/api/offers")
    assert status == 200
    assert offers[0]["id"] == 1
    assert offers[0]["remaining_kwh"] == 4
    status, body = request(base + "/api/buy", {"offer_id": 1, "kwh": 2})
    assert status == 202
    assert len(body["transactions"]) == 2
    agent.reporter.step()
    assert chain.get_offer(1).remaining_kwh == 2


def test_buy_with_bad_input_names_the_field(ui):
    base, _agent, _chain = ui
    status, body = request(base + "/api/buy", {"offer_id": 1, "kwh": 0})
    assert status == 400
    assert body["error"] == "kwh = 0; expected a whole number >= 1"


def test_buy_of_a_closed_offer_is_a_conflict(ui):
    base, agent, _chain = ui
    agent.reporter.step()
    status, body = request(base + "/api/buy", {"offer_id": 9, "kwh": 1})
    assert status == 409
    assert "offer 9 is not open" in body["error"]


@pytest.mark.parametrize(("host", "lan"), [
    ("192.168.1.20", True), ("10.0.0.5", True), ("127.0.0.1", True), ("fe80::1", True),
    ("::ffff:192.168.0.2", True), ("8.8.8.8", False), ("2001:4860::8888", False),
])  # fmt: skip
def test_only_lan_clients_are_served(host, lan):
    assert is_lan(host) is lan
