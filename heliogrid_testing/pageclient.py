"""A browser for the agent's page in tests: its session cookie, its CSRF token and the Host header it sends."""

from __future__ import annotations

import http.client
import json
import socket


class Client:
    """One browser: keeps its session cookie and CSRF token, sends the Host header it is told to."""

    def __init__(self, port: int, host: str | None = None) -> None:
        self.port = port
        self.host = host or f"127.0.0.1:{port}"
        self.cookie: str | None = None
        self.csrf: str | None = None

    def call(self, method: str, path: str, body=None, headers=None) -> tuple[int, dict, http.client.HTTPMessage]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        sent = {"Host": self.host}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        if self.cookie:
            sent["Cookie"] = self.cookie
        if self.csrf:
            sent["X-CSRF-Token"] = self.csrf
        sent.update(headers or {})
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        cookie = response.headers.get("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, json.loads(payload) if payload.startswith((b"{", b"[")) else {}, response.headers

    def post(self, path: str, body, headers=None) -> tuple[int, dict]:
        status, payload, _ = self.call("POST", path, body, headers)
        return status, payload

    def get(self, path: str) -> tuple[int, dict]:
        status, payload, _ = self.call("GET", path)
        return status, payload

    def login(self, code: str) -> int:
        status, body = self.post("/api/login", {"code": code})
        self.csrf = body.get("csrf")
        return status


def raw_request(port: int, text: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(text)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)
