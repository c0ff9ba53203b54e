"""The Pi's local web page (standard library http.server): state at a glance, pause selling, buy energy.

LAN only: clients outside private, loopback and link-local ranges get 403. State-changing requests must be
JSON POSTs from the page's own origin, so another web site open in a LAN browser cannot spend tokens.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from heliogrid_agent.chain import NodeUnavailable, SendRejected
from heliogrid_agent.reporter import BuyError
from heliogrid_agent.ui_page import PAGE

log = logging.getLogger("heliogrid_agent.ui")
MAX_BODY = 4096


def is_lan(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_private or ip.is_loopback or ip.is_link_local


class UiServer:
    def __init__(self, agent: Any, address: str, port: int) -> None:
        self.agent = agent
        handler = type("Handler", (_Handler,), {"agent": agent})
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
    server_version = "heliogrid-agent"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("ui %s " + format, self.client_address[0], *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _allowed(self) -> bool:
        if is_lan(self.client_address[0]):
            return True
        self._json(HTTPStatus.FORBIDDEN, {"error": "the agent's page is for the local network only"})
        return False

    def do_GET(self) -> None:
        if not self._allowed():
            return
        path = urlsplit(self.path).path
        if path == "/":
            self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/api/status":
            self._json(HTTPStatus.OK, self.agent.status())
        elif path == "/api/offers":
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
                    }
                    for o in offers
                ],
            )
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page {path}"})

    def _body(self) -> dict[str, Any] | None:
        if self.headers.get_content_type() != "application/json":
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send JSON (Content-Type: application/json)"})
            return None
        origin = self.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != self.headers.get("Host"):
            self._json(HTTPStatus.FORBIDDEN, {"error": f"cross-origin request from {origin} refused"})
            return None
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body over {MAX_BODY} bytes"})
            return None
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "body is not valid JSON"})
            return None
        if not isinstance(body, dict):
            self._json(HTTPStatus.BAD_REQUEST, {"error": "body must be a JSON object"})
            return None
        return body

    def do_POST(self) -> None:
        if not self._allowed():
            return
        path = urlsplit(self.path).path
        if path not in ("/api/selling", "/api/buy"):
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such action {path}"})
            return
        body = self._body()
        if body is None:
            return
        if path == "/api/selling":
            paused = body.get("paused")
            if not isinstance(paused, bool):
                self._json(HTTPStatus.BAD_REQUEST, {"error": f"paused = {paused!r}; expected true or false"})
                return
            self.agent.set_selling_paused(paused)
            log.info("ui: selling %s", "paused" if paused else "resumed", extra={"event": "ui_pause", "paused": paused})
            self._json(HTTPStatus.OK, {"selling_paused": paused})
            return
        self._buy(body)

    def _buy(self, body: dict[str, Any]) -> None:
        offer_id, kwh = body.get("offer_id"), body.get("kwh")
        for name, value in (("offer_id", offer_id), ("kwh", kwh)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self._json(HTTPStatus.BAD_REQUEST, {"error": f"{name} = {value!r}; expected a whole number >= 1"})
                return
        if self.agent.reporter is None:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "chain reporting is disabled in the configuration"})
            return
        try:
            hashes = self.agent.reporter.buy(offer_id, kwh)
        except BuyError as exc:
            self._json(HTTPStatus.CONFLICT, {"error": str(exc)})
        except (NodeUnavailable, SendRejected) as exc:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"could not send: {exc}"})
        else:
            self._json(HTTPStatus.ACCEPTED, {"transactions": hashes})
