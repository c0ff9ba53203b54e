"""The Pi's local web page (standard library http.server): state at a glance, pause selling, set the ask price, buy
energy, switch automatic buying.

Reading is open to the LAN (clients outside private, loopback and link-local ranges get 403); changing
anything needs the owner's login code (ui_auth.py says how the page is guarded). Every request must name this
machine in its Host header, and a purchase is quoted, then confirmed.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from heliogrid_agent.chain import NodeUnavailable, SendRejected
from heliogrid_agent.config import TOKEN_DECIMALS, ConfigError, token_amount
from heliogrid_agent.reporter import BuyError
from heliogrid_agent.ui_auth import HostCheck, SecretError, Session, Sessions, csrf_ok, ensure_secret
from heliogrid_agent.ui_page import PAGE

log = logging.getLogger("heliogrid_agent.ui")
MAX_BODY = 4096
COOKIE = "heliogrid_session"


def is_lan(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_private or ip.is_loopback or ip.is_link_local


def prepare_secret(secret_file: str | Path) -> None:
    """Create the owner's login code if missing; the journal names the file, never the code."""
    if ensure_secret(secret_file):
        log.warning(
            "created the page's login code in %s: its owner reads it there (sudo cat %s)",
            secret_file,
            secret_file,
            extra={"event": "ui_secret_created"},
        )


class UiServer:
    def __init__(
        self,
        agent: Any,
        address: str,
        port: int,
        *,
        secret_file: str | Path,
        allowed_hosts: tuple[str, ...] = ("auto",),
        session_hours: float = 12.0,
        quote_seconds: float = 60.0,
        timeout: float = 10.0,
    ) -> None:
        self.agent = agent
        prepare_secret(secret_file)
        self.sessions = Sessions(secret_file, session_hours * 3600, quote_seconds)
        attributes = {
            "agent": agent,
            "hosts": HostCheck(allowed_hosts, address),
            "sessions": self.sessions,
            "secret_file": str(secret_file),
            "timeout": timeout,  # socketserver puts it on every connection: a silent client is dropped
        }
        handler = type("Handler", (_Handler,), attributes)
        self.httpd = ThreadingHTTPServer((address, port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="ui", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> UiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    agent: Any
    hosts: HostCheck
    sessions: Sessions
    secret_file: str
    server_version = "heliogrid-agent"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("ui %s " + format, self.client_address[0], *args)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        )
        self.send_header("Referrer-Policy", "no-referrer")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _refuse(self, status: int, error: str) -> None:
        # The body (if any) was not read: the connection cannot carry another request.
        self.close_connection = True
        self._json(status, {"error": error})

    def _allowed(self) -> bool:
        if not is_lan(self.client_address[0]):
            self._refuse(HTTPStatus.FORBIDDEN, "the agent's page is for the local network only")
            return False
        host = self.headers.get("Host")
        if not self.hosts.allows(host, self.connection.getsockname()[0]):
            log.warning(
                "ui: refused a request for host %r from %s (not in ui.allowed_hosts)",
                host,
                self.client_address[0],
                extra={"event": "ui_bad_host", "host": str(host)},
            )
            self._refuse(HTTPStatus.FORBIDDEN, f"host {host!r} is not served here (ui.allowed_hosts)")
            return False
        return True

    # -- reading -----------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        if not self._allowed():
            return
        path = urlsplit(self.path).path
        routes = {
            "/": self._page,
            "/api/status": self._status,
            "/api/offers": self._offers,
            "/api/session": self._session_info,
        }
        route = routes.get(path)
        if route is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page {path}"})
        else:
            route()

    def _page(self) -> None:
        self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")

    def _status(self) -> None:
        self._json(HTTPStatus.OK, self.agent.status())

    def _offers(self) -> None:
        reporter = self.agent.reporter
        if reporter is None:
            self._json(HTTPStatus.OK, [])
            return
        try:
            offers = reporter.open_offers()
        except NodeUnavailable as exc:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"node unreachable: {exc}"})
            return
        self._json(
            HTTPStatus.OK,
            [
                {
                    "id": o.offer_id,
                    "seller": o.seller,
                    "remaining_kwh": o.remaining_kwh,
                    "price_per_kwh": str(o.price_per_kwh),
                    "within_cap": 0 < o.price_per_kwh <= reporter.max_buy_price_per_kwh,
                }
                for o in offers
            ],
        )

    def _session_info(self) -> None:
        session = self._current_session()
        reporter = self.agent.reporter
        cap = None if reporter is None else str(reporter.max_buy_price_per_kwh)
        payload: dict[str, Any] = {"logged_in": session is not None, "max_price_per_kwh": cap}
        if session is not None:
            payload["csrf"] = session.csrf  # same-origin only: the Host check keeps other origins out
        else:
            payload["code_file"] = self.secret_file
        self._json(HTTPStatus.OK, payload)

    # -- changing ----------------------------------------------------------------------------------------
    def do_POST(self) -> None:
        if not self._allowed():
            return
        path = urlsplit(self.path).path
        # Every action but the login needs the owner's session and its CSRF token.
        owner_actions = {
            "/api/logout": self._logout,
            "/api/selling": self._selling,
            "/api/auto-buy": self._auto_buy,
            "/api/ask-price": self._ask_price,
            "/api/buy/quote": self._quote,
            "/api/buy": self._buy,
        }
        if path != "/api/login" and path not in owner_actions:
            self._refuse(HTTPStatus.NOT_FOUND, f"no such action {path}")
            return
        body = self._body()
        if body is None:
            return
        if path == "/api/login":
            self._login(body)
            return
        session = self._authorized()
        if session is not None:
            owner_actions[path](body, session)

    def _current_session(self) -> Session | None:
        try:
            cookie = SimpleCookie(self.headers.get("Cookie") or "")
        except CookieError:
            return None
        morsel = cookie.get(COOKIE)
        return self.sessions.get(morsel.value if morsel else None)

    def _authorized(self) -> Session | None:
        session = self._current_session()
        if session is None:
            self._json(
                HTTPStatus.UNAUTHORIZED,
                {"error": f"log in with the owner's code first (on the Pi: sudo cat {self.secret_file})"},
            )
            return None
        if not csrf_ok(session, self.headers.get("X-CSRF-Token")):
            self._json(HTTPStatus.FORBIDDEN, {"error": "missing or wrong X-CSRF-Token for this session"})
            return None
        return session

    def _content_length(self) -> int | None:
        if self.headers.get("Transfer-Encoding"):
            self._refuse(HTTPStatus.BAD_REQUEST, "Transfer-Encoding is not accepted; send a Content-Length")
            return None
        values = self.headers.get_all("Content-Length") or []
        if len(values) > 1:
            self._refuse(HTTPStatus.BAD_REQUEST, f"Content-Length given {len(values)} times")
            return None
        raw = values[0].strip() if values else "0"
        if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_BODY:
            self._refuse(
                HTTPStatus.BAD_REQUEST, f"Content-Length = {raw[:20]!r}; expected a whole number 0..{MAX_BODY}"
            )
            return None
        return int(raw)

    def _body(self) -> dict[str, Any] | None:
        if self.headers.get_content_type() != "application/json":
            self._refuse(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send JSON (Content-Type: application/json)")
            return None
        origin = self.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != self.headers.get("Host"):
            self._refuse(HTTPStatus.FORBIDDEN, f"cross-origin request from {origin} refused")
            return None
        length = self._content_length()
        if length is None:
            return None
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except (ValueError, TimeoutError):
            self._refuse(HTTPStatus.BAD_REQUEST, "body is not valid JSON")
            return None
        if not isinstance(body, dict):
            self._json(HTTPStatus.BAD_REQUEST, {"error": "body must be a JSON object"})
            return None
        return body

    def _login(self, body: dict[str, Any]) -> None:
        wait = self.sessions.retry_after()
        if wait > 0:
            self._json(
                HTTPStatus.TOO_MANY_REQUESTS,
                {"error": f"too many wrong codes; try again in {wait:.0f} s"},
                {"Retry-After": str(int(wait) + 1)},
            )
            return
        code = body.get("code")
        if not isinstance(code, str):
            self._json(HTTPStatus.BAD_REQUEST, {"error": "code = missing; expected the owner's login code"})
            return
        try:
            session = self.sessions.login(code)
        except SecretError as exc:
            log.error("ui: %s", exc, extra={"event": "ui_secret_error"})
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "the login code file cannot be used; see the journal"})
            return
        if session is None:
            log.warning("ui: wrong login code from %s", self.client_address[0], extra={"event": "ui_login_failed"})
            self._json(HTTPStatus.UNAUTHORIZED, {"error": "wrong code"})
            return
        log.info("ui: owner logged in from %s", self.client_address[0], extra={"event": "ui_login"})
        max_age = int(self.sessions.lifetime)
        cookie = f"{COOKIE}={session.token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"
        self._json(HTTPStatus.OK, {"csrf": session.csrf}, {"Set-Cookie": cookie})

    def _logout(self, _body: dict[str, Any], session: Session) -> None:
        self.sessions.logout(session.token)
        self._json(
            HTTPStatus.OK,
            {"logged_in": False},
            {"Set-Cookie": f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"},
        )

    def _selling(self, body: dict[str, Any], _session: Session) -> None:
        paused = body.get("paused")
        if not isinstance(paused, bool):
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"paused = {paused!r}; expected true or false"})
            return
        self.agent.set_selling_paused(paused)
        log.info("ui: selling %s", "paused" if paused else "resumed", extra={"event": "ui_pause", "paused": paused})
        self._json(HTTPStatus.OK, {"selling_paused": paused})

    def _auto_buy(self, body: dict[str, Any], _session: Session) -> None:
        on = body.get("on")
        if not isinstance(on, bool):
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"on = {on!r}; expected true or false"})
            return
        try:
            self.agent.set_auto_buy(on)
        except ValueError as exc:
            self._json(HTTPStatus.CONFLICT, {"error": str(exc)})
            return
        log.info("ui: automatic buying %s", "on" if on else "off", extra={"event": "ui_auto_buy", "on": on})
        self._json(HTTPStatus.OK, {"auto_buy": on})

    def _ask_price(self, body: dict[str, Any], _session: Session) -> None:
        value = body.get("price_per_kwh")
        try:
            if not isinstance(value, str):
                raise ConfigError(f'price_per_kwh = {value!r} must be a token amount as a string, e.g. "1.5"')
            units = int(token_amount("price_per_kwh", value) * 10**TOKEN_DECIMALS)
        except ConfigError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        try:
            self.agent.set_ask_price(units)
        except ValueError as exc:
            self._json(HTTPStatus.CONFLICT, {"error": str(exc)})
            return
        log.info("ui: ask price set to %s", value, extra={"event": "ui_ask_price", "price": str(units)})
        self._json(HTTPStatus.OK, {"ask_price_per_kwh": str(units)})

    def _quote(self, body: dict[str, Any], session: Session) -> None:
        offer_id, kwh = body.get("offer_id"), body.get("kwh")
        for name, value in (("offer_id", offer_id), ("kwh", kwh)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self._json(HTTPStatus.BAD_REQUEST, {"error": f"{name} = {value!r}; expected a whole number >= 1"})
                return
        reporter = self.agent.reporter
        if reporter is None:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "chain reporting is disabled in the configuration"})
            return
        try:
            quote = reporter.quote(offer_id, kwh)
        except BuyError as exc:
            self._json(HTTPStatus.CONFLICT, {"error": str(exc)})
            return
        except NodeUnavailable as exc:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"node unreachable: {exc}"})
            return
        self._json(
            HTTPStatus.OK,
            {
                "quote": self.sessions.add_quote(session, quote),
                "offer_id": quote.offer_id,
                "kwh": quote.kwh,
                "price_per_kwh": str(quote.price_per_kwh),
                "total": str(quote.cost),
                "seller": quote.seller,
                "expires_in": self.sessions.quote_seconds,
            },
        )

    def _buy(self, body: dict[str, Any], session: Session) -> None:
        quote_id = body.get("quote")
        if not isinstance(quote_id, str):
            self._json(
                HTTPStatus.BAD_REQUEST,
                {"error": "quote = missing; ask POST /api/buy/quote first and confirm with its quote"},
            )
            return
        quote = self.sessions.take_quote(session, quote_id)
        if quote is None:
            self._json(HTTPStatus.CONFLICT, {"error": "this quote is unknown, used or expired; ask for a new one"})
            return
        try:
            hashes = self.agent.reporter.buy(quote.offer_id, quote.kwh, quoted=quote)
        except BuyError as exc:
            self._json(HTTPStatus.CONFLICT, {"error": str(exc)})
        except (NodeUnavailable, SendRejected) as exc:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"could not send: {exc}"})
        else:
            self._json(HTTPStatus.ACCEPTED, {"transactions": hashes, "total": str(quote.cost)})
