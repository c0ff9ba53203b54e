from __future__ import annotations

import logging
import socket
import stat
import time

import pytest
from heliogrid_testing.pageclient import Client, raw_request

from heliogrid_agent.agent import Agent
from heliogrid_agent.config import parse_config
from heliogrid_agent.reporter import Reporter
from heliogrid_agent.sensors.base import Reading, Sensor
from heliogrid_agent.store import Store
from heliogrid_agent.ui import UiServer, is_lan
from heliogrid_agent.ui_auth import HostCheck, SecretError, ensure_secret, host_name, read_secret

CAP = 2 * 10**18  # the owner's cap in the fixture: 2 tokens per kWh
SELLER = "0x" + "33" * 20


class Constant(Sensor):
    def read(self) -> Reading:
        return Reading(720.0)


@pytest.fixture
def ui(tmp_path, clock, fake_chain, account):
    cfg = parse_config({"meter": {"sensor": "simulated"}})
    store = Store(tmp_path / "agent.db")
    reporter = Reporter(fake_chain, store, account, expected_chain_id=1337, clock=clock, max_buy_price_per_kwh=CAP)
    agent = Agent(cfg, Constant(), store, reporter, clock)
    secret = tmp_path / "ui-secret"
    server = UiServer(agent, "127.0.0.1", 0, secret_file=secret, timeout=1.0).start()
    fake_chain.offers[1] = fake_chain.get_offer(1).__class__(1, SELLER, SELLER, 4, 10**18, True)
    fake_chain.offers[2] = fake_chain.get_offer(1).__class__(2, SELLER, SELLER, 4, CAP + 1, True)
    fake_chain.balances[account.address.lower()] = 50 * 10**18
    reporter.step()
    yield server, agent, fake_chain, read_secret(secret)
    server.stop()


@pytest.fixture
def owner(ui):
    server, _agent, _chain, code = ui
    client = Client(server.port)
    assert client.login(code) == 200
    return client


# -- reading stays open to the LAN ------------------------------------------------------------------------
def test_page_and_status_are_served_without_logging_in(ui, clock):
    server, agent, chain, _code = ui
    client = Client(server.port)
    status, _body, headers = client.call("GET", "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    for _ in range(3):
        clock.advance(5)
        agent.sample_once()
    agent.reporter.step()
    status, body = client.get("/api/status")
    assert status == 200
    assert body["power_watts"] == 720.0
    assert body["today_kwh"] == pytest.approx(0.002)
    assert body["sold_kwh"] == 0
    assert body["node"] == {"up": True, "syncing": False, "block": chain.block_number(), "peers": 2}
    assert body["selling_paused"] is False
    assert body["market_paused"] is False
    assert body["gas"] == {"ether_wei": str(10**21), "transactions_left": 10**21 // (300_000 * 10**9), "low": False}


# -- the owner's code ------------------------------------------------------------------------------------
def test_login_code_is_created_on_first_start_readable_by_its_owner_only_and_never_logged(tmp_path, caplog):
    secret = tmp_path / "ui-secret"
    with caplog.at_level(logging.DEBUG):
        from heliogrid_agent.ui import prepare_secret

        prepare_secret(secret)
    code = read_secret(secret)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(code) == 20
    assert str(secret) in caplog.text
    assert code not in caplog.text.replace("-", "")
    assert ensure_secret(secret) is False  # a second start keeps it
    assert read_secret(secret) == code
    assert read_secret(tmp_path / "ui-secret") != read_secret(_another(tmp_path))  # no default code


def _another(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    ensure_secret(other / "ui-secret")
    return other / "ui-secret"


def test_a_code_file_others_can_read_is_refused(tmp_path):
    secret = tmp_path / "ui-secret"
    secret.write_text("ABCDE-FGHJK-MNPQR-STUVW\n")
    secret.chmod(0o644)
    with pytest.raises(SecretError, match="readable by its owner only"):
        ensure_secret(secret)


@pytest.mark.parametrize(("path", "body"), [
    ("/api/selling", {"paused": True}),
    ("/api/buy/quote", {"offer_id": 1, "kwh": 1}),
    ("/api/buy", {"offer_id": 1, "kwh": 1}),
    ("/api/buy", {"quote": "guessed"}),
    ("/api/ask-price", {"price_per_kwh": "1"}),
])  # fmt: skip
def test_post_without_the_secret_changes_nothing(ui, path, body):
    server, agent, chain, _code = ui
    status, answer = Client(server.port).post(path, body)
    assert status == 401
    assert "sudo cat" in answer["error"]
    assert not agent.store.selling_paused()
    assert agent.store.transactions() == []
    assert chain.sent == []


def test_wrong_codes_are_refused_and_repeated_ones_lock_the_login(ui):
    server, _agent, _chain, code = ui
    client = Client(server.port)
    for _ in range(5):
        assert client.login("AAAAA-AAAAA-AAAAA-AAAAA") == 401
    assert client.login(code) == 429  # even the right code waits now
    assert client.cookie is None


def test_login_sets_an_httponly_samesite_strict_session_cookie(ui):
    server, _agent, _chain, code = ui
    client = Client(server.port)
    _status, body, headers = client.call("POST", "/api/login", {"code": code.lower()})  # typed in lower case
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert body["csrf"]
    status, session = client.get("/api/session")
    assert (status, session["logged_in"], session["csrf"]) == (200, True, body["csrf"])


@pytest.mark.parametrize("token", [None, "", "wrong"])
def test_post_with_a_missing_or_wrong_csrf_token_is_refused(ui, owner, token):
    _server, agent, _chain, _code = ui
    owner.csrf = token
    status, body = owner.post("/api/selling", {"paused": True})
    assert status == 403
    assert "X-CSRF-Token" in body["error"]
    assert not agent.store.selling_paused()


def test_the_csrf_token_of_another_session_is_refused(ui, owner):
    server, agent, _chain, code = ui
    other = Client(server.port)
    other.login(code)
    owner.csrf = other.csrf
    assert owner.post("/api/selling", {"paused": True})[0] == 403
    assert not agent.store.selling_paused()


def test_pause_and_resume_selling_as_the_owner(ui, owner):
    _server, agent, _chain, _code = ui
    assert owner.post("/api/selling", {"paused": True}) == (200, {"selling_paused": True})
    assert agent.store.selling_paused()
    assert owner.post("/api/selling", {"paused": False})[0] == 200
    assert not agent.store.selling_paused()


def test_pause_with_a_non_boolean_is_rejected(owner):
    status, body = owner.post("/api/selling", {"paused": "yes"})
    assert status == 400
    assert "expected true or false" in body["error"]


# -- the Host header -------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "attacker.rebind.network", ""])
def test_dns_rebinding_request_with_a_foreign_host_is_refused(ui, owner, host):
    _server, agent, chain, _code = ui
    owner.host = host  # the browser of a rebinding page: the attacker's name, the Pi's address
    assert owner.post("/api/selling", {"paused": True})[0] == 403
    assert owner.post("/api/buy/quote", {"offer_id": 1, "kwh": 1})[0] == 403
    status, body = owner.get("/api/status")
    assert status == 403
    assert "ui.allowed_hosts" in body["error"]
    assert not agent.store.selling_paused()
    assert chain.sent == []


def test_host_check_accepts_its_names_and_the_address_a_client_reached():
    auto = HostCheck(["auto"], "192.168.1.31")
    assert auto.allows("localhost:8080", "127.0.0.1")
    assert auto.allows(f"{socket.gethostname()}:8080", "192.168.1.31")
    assert auto.allows("192.168.1.31:8080", "192.168.1.31")
    assert auto.allows("10.0.0.7", "10.0.0.7")  # the address this connection arrived at
    assert not auto.allows("10.0.0.8", "10.0.0.7")
    assert not auto.allows("evil.example", "192.168.1.31")
    assert not auto.allows(None, "192.168.1.31")
    named = HostCheck(["solar.home.arpa"])
    assert named.allows("Solar.Home.Arpa.:8080", "192.168.1.31")
    assert not named.allows("localhost", "127.0.0.1")  # without "auto" only the names given
    assert not named.allows("192.168.1.31", "192.168.1.31")


@pytest.mark.parametrize(("header", "name"), [
    ("[::1]:8080", "::1"), ("Pi1.LOCAL.:80", "pi1.local"), ("192.168.1.5", "192.168.1.5"), ("", None),
])  # fmt: skip
def test_host_name_strips_port_and_case(header, name):
    assert host_name(header) == name


# -- buying: quote, then confirm -------------------------------------------------------------------------
def test_purchase_is_quoted_then_confirmed_once(ui, owner):
    _server, agent, chain, _code = ui
    status, quote = owner.post("/api/buy/quote", {"offer_id": 1, "kwh": 2})
    assert status == 200
    assert (quote["price_per_kwh"], quote["total"]) == (str(10**18), str(2 * 10**18))
    assert chain.sent == []  # a quote signs nothing
    status, body = owner.post("/api/buy", {"quote": quote["quote"]})
    assert status == 202
    assert len(body["transactions"]) == 2  # approve, buy
    agent.reporter.step()
    assert chain.get_offer(1).remaining_kwh == 2
    assert owner.post("/api/buy", {"quote": quote["quote"]})[0] == 409  # used


def test_purchase_above_the_owners_cap_is_refused(ui, owner):
    _server, agent, chain, _code = ui
    status, body = owner.post("/api/buy/quote", {"offer_id": 2, "kwh": 1})
    assert status == 409
    assert "above the owner's cap buy.max_price_per_kwh" in body["error"]
    assert chain.sent == []
    assert agent.store.transactions() == []


def test_buy_without_a_confirmed_quote_is_refused(owner):
    status, body = owner.post("/api/buy", {"offer_id": 1, "kwh": 1})
    assert status == 400
    assert "/api/buy/quote" in body["error"]


def test_a_quote_cannot_be_confirmed_from_another_session_or_after_it_expired(ui, owner):
    server, _agent, chain, code = ui
    _status, quote = owner.post("/api/buy/quote", {"offer_id": 1, "kwh": 1})
    other = Client(server.port)
    other.login(code)
    assert other.post("/api/buy", {"quote": quote["quote"]})[0] == 409
    sessions = server.sessions
    sessions.now = lambda: time.monotonic() + 61  # a minute later
    assert owner.post("/api/buy", {"quote": quote["quote"]})[0] in (401, 409)
    assert chain.sent == []


def test_a_price_other_than_the_quoted_one_is_not_paid(ui, owner):
    _server, _agent, chain, _code = ui
    _status, quote = owner.post("/api/buy/quote", {"offer_id": 1, "kwh": 1})
    chain.offers[1] = chain.offers[1].__class__(1, SELLER, SELLER, 4, CAP, True)  # still under the cap
    status, body = owner.post("/api/buy", {"quote": quote["quote"]})
    assert status == 409
    assert "not the 1000000000000000000 confirmed" in body["error"]
    assert chain.sent == []


def test_buy_of_a_closed_offer_is_a_conflict(owner):
    status, body = owner.post("/api/buy/quote", {"offer_id": 9, "kwh": 1})
    assert status == 409
    assert "offer 9 is not open" in body["error"]


def test_buy_with_bad_input_names_the_field(owner):
    status, body = owner.post("/api/buy/quote", {"offer_id": 1, "kwh": 0})
    assert status == 400
    assert body["error"] == "kwh = 0; expected a whole number >= 1"


# -- malformed requests ----------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [b"-1", b"-4096", b"abc", b"1e3", b"99999999999", b"4097", b" "])
def test_bad_content_length_gets_a_400_at_once(ui, length):
    server, _agent, _chain, _code = ui
    started = time.monotonic()
    answer = raw_request(
        server.port,
        b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + length + b"\r\n\r\n{}",
    )
    assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"Content-Length" in answer
    assert time.monotonic() - started < 0.9  # answered, not waiting for the socket timeout


def test_two_content_lengths_and_chunked_bodies_are_refused(ui):
    server, *_ = ui
    head = b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    assert raw_request(server.port, head + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}").split(b" ")[1] == b"400"
    assert raw_request(server.port, head + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n").split(b" ")[
        1
    ] == (b"400")


def test_a_silent_client_is_dropped_after_the_socket_timeout(ui):
    server, *_ = ui
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and then nothing
        assert sock.recv(1024) == b""  # the server closed it
    assert time.monotonic() - started < 5


def test_a_body_shorter_than_its_content_length_times_out(ui):
    server, *_ = ui
    started = time.monotonic()
    answer = raw_request(
        server.port,
        b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{",
    )
    assert answer == b"" or b" 400 " in answer.split(b"\r\n")[0]
    assert time.monotonic() - started < 5


def test_cross_origin_post_is_refused(ui, owner):
    _server, agent, _chain, _code = ui
    status, body = owner.post("/api/selling", {"paused": True}, {"Origin": "http://evil.example"})
    assert status == 403
    assert "cross-origin" in body["error"]
    assert not agent.store.selling_paused()


def test_form_post_is_refused(ui, owner):
    status, _payload, _ = owner.call(
        "POST", "/api/selling", None, {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "11"}
    )
    assert status in (400, 415)


@pytest.mark.parametrize(("host", "lan"), [
    ("192.168.1.20", True), ("10.0.0.5", True), ("127.0.0.1", True), ("fe80::1", True),
    ("::ffff:192.168.0.2", True), ("8.8.8.8", False), ("2001:4860::8888", False),
])  # fmt: skip
def test_only_lan_clients_are_served(host, lan):
    assert is_lan(host) is lan


# -- automatic buying ------------------------------------------------------------------------------------
@pytest.fixture
def auto_buyer(ui):
    from heliogrid_agent.autobuy import AutoBuyer

    _server, agent, _chain, _code = ui
    return AutoBuyer(agent.reporter, available=True, daily_budget=5 * 10**18)


@pytest.mark.parametrize("csrf", ["no session", None, "wrong"])
def test_switching_auto_buy_without_the_owners_session_and_csrf_token_changes_nothing(ui, owner, auto_buyer, csrf):
    server, agent, _chain, _code = ui
    client = Client(server.port) if csrf == "no session" else owner
    if csrf != "no session":
        client.csrf = csrf
    status, _body = client.post("/api/auto-buy", {"on": False})
    assert status == (401 if csrf == "no session" else 403)
    assert auto_buyer.enabled
    assert agent.status()["auto_buy"]["enabled"] is True


def test_the_owner_switches_auto_buy_off_and_on_and_the_setting_is_kept_in_the_store(ui, owner, auto_buyer):
    from heliogrid_agent.autobuy import AutoBuyer

    _server, agent, _chain, _code = ui
    assert owner.post("/api/auto-buy", {"on": False}) == (200, {"auto_buy": False})
    assert not auto_buyer.enabled
    # a restarted agent reads it from the database
    assert not AutoBuyer(agent.reporter, available=True, daily_budget=1).enabled
    assert owner.post("/api/auto-buy", {"on": "yes"})[0] == 400
    assert owner.post("/api/auto-buy", {"on": True})[0] == 200
    assert agent.status()["auto_buy"]["enabled"] is True


def test_auto_buy_off_in_the_configuration_cannot_be_switched_on_from_the_page(ui, owner):
    from heliogrid_agent.autobuy import AutoBuyer

    _server, agent, _chain, _code = ui
    AutoBuyer(agent.reporter, available=False, daily_budget=0)
    status, body = owner.post("/api/auto-buy", {"on": True})
    assert status == 409
    assert "buy.auto = false" in body["error"]
    assert agent.status()["auto_buy"]["enabled"] is False


def test_status_shows_imported_bought_spent_and_uncovered_kwh(ui, auto_buyer):
    server, agent, _chain, _code = ui
    auto_buyer.set_enabled(False)  # nothing bought: the figures come from the import alone
    agent.imported_uwh = lambda: 10**9 // 2
    agent.reporter.step(agent._imported())  # the baseline: 0 whole kWh
    agent.imported_uwh = lambda: 3 * 10**9 + 10**8
    agent.reporter.step(agent._imported())
    status, body = Client(server.port).get("/api/status")
    assert status == 200
    auto = body["auto_buy"]
    assert auto["imported_kwh"] == pytest.approx(3.1)
    assert (auto["bought_kwh"], auto["tokens_spent"], auto["uncovered_kwh"]) == (0, "0", 3)
    assert auto["daily_budget"] == str(5 * 10**18)
    assert auto["waiting"] == "automatic buying is off"


@pytest.fixture
def own_meter(ui, account):
    """The lab's case: the meter's key is its owner's account, so the agent may set the ask price."""
    from heliogrid_agent.askprice import AskPrice

    _server, agent, chain, _code = ui
    chain.register(account.address, owner=account.address, capacity_watts=4000)
    chain.mine()  # registerMeter is a transaction: the agent sees it from the next block
    ask = AskPrice(agent.reporter, configured=10**18)
    agent.reporter.step()  # the configured price goes out and is mined (the fake chain mines at once)
    assert chain.ask_price(account.address) == 10**18
    return ask


@pytest.mark.parametrize("csrf", ["no session", None, "wrong"])
def test_an_attacker_on_the_lan_cannot_change_the_ask_price(ui, owner, own_meter, account, csrf):
    """Anyone on the home network without the owner's code (or with a session but without its CSRF token) is
    refused, and nothing is stored or sent."""
    server, agent, chain, _code = ui
    client = Client(server.port) if csrf == "no session" else owner
    if csrf != "no session":
        client.csrf = csrf
    sent = len(chain.sent)
    status, _body = client.post("/api/ask-price", {"price_per_kwh": "0.001"})
    assert status == (401 if csrf == "no session" else 403)
    agent.reporter.step()
    assert len(chain.sent) == sent
    assert chain.ask_price(account.address) == 10**18
    assert own_meter.status()["source"] == "config"


def test_the_owner_changes_the_ask_price_on_the_page_and_it_is_sent_once_and_kept(ui, owner, own_meter, account):
    from heliogrid_agent.askprice import AskPrice

    server, agent, chain, _code = ui
    assert owner.post("/api/ask-price", {"price_per_kwh": "1.5"}) == (200, {"ask_price_per_kwh": str(15 * 10**17)})
    sent = len(chain.sent)
    for _ in range(3):
        agent.reporter.step()
    assert len(chain.sent) == sent + 1
    assert chain.ask_price(account.address) == 15 * 10**17
    ask = Client(server.port).get("/api/status")[1]["ask_price"]
    assert (ask["on_chain"], ask["wanted"], ask["source"]) == (str(15 * 10**17), str(15 * 10**17), "page")
    assert AskPrice(agent.reporter, configured=10**18).wanted == 15 * 10**17  # a restarted agent keeps the choice


@pytest.mark.parametrize("value", ["-1", "cheap", 1.5, None, "1e-19"])
def test_an_ask_price_that_is_not_a_token_amount_is_refused_with_its_value(ui, owner, own_meter, value):
    _server, agent, chain, _code = ui
    sent = len(chain.sent)
    status, body = owner.post("/api/ask-price", {"price_per_kwh": value})
    assert status == 400
    assert f"price_per_kwh = {value!r}" in body["error"]
    agent.reporter.step()
    assert len(chain.sent) == sent
    assert own_meter.status()["source"] == "config"


def test_with_a_separate_owner_the_page_says_the_owner_sets_the_price_from_their_wallet(ui, owner):
    from heliogrid_agent.askprice import AskPrice

    _server, agent, chain, _code = ui  # the fixture's meter belongs to another account
    AskPrice(agent.reporter, configured=10**18)
    agent.reporter.step()
    status, body = owner.post("/api/ask-price", {"price_per_kwh": "2"})
    assert status == 409
    assert "their own wallet" in body["error"]
    assert agent.status()["ask_price"]["note"].endswith("from their own wallet")
    agent.reporter.step()
    assert chain.sent == []
