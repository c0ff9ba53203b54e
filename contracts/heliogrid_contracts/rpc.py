"""Reaching a node's JSON-RPC: directly over HTTP, or relayed through a command.

A node's HTTP-RPC listens on loopback only. The deployer reaches it either at a URL it can open
itself (an SSH tunnel the operator made, a devchain on this machine) or through a command that runs
a Python on the node's host and relays line-delimited JSON-RPC to the loopback URL there, e.g.
`podman exec -i hg-stats1` or `ssh -T admin@stats.example.org`. No port is opened by the relay.
"""

from __future__ import annotations

import subprocess
import threading
from typing import Any

from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware
from web3.providers.base import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

# Runs on the node's host with its system python3 (stdlib only): one JSON-RPC request per line in,
# one response per line out. JSON strings never hold raw newlines, so dropping them is lossless.
RELAY_SCRIPT = """
import sys, urllib.error, urllib.request
url = sys.argv[1]
for line in sys.stdin.buffer:
    req = urllib.request.Request(url, data=line.strip(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    except OSError as exc:
        message = "relay: " + str(exc).replace('"', "'")
        body = ('{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"%s"}}' % message).encode()
    sys.stdout.buffer.write(body.replace(b"\\n", b"") + b"\\n")
    sys.stdout.buffer.flush()
"""


class RelayError(ConnectionError):
    """The relay command could not be started or stopped answering."""


class RelayProvider(JSONBaseProvider):
    """A web3 provider sending each request through a long-running relay process."""

    def __init__(self, via: list[str], url: str, python: str = "python3", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.command = [*via, python, "-u", "-c", RELAY_SCRIPT, url]
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._describe = f"{' '.join(via)} -> {url}"

    def _process(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            try:
                self._proc = subprocess.Popen(
                    self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                )
            except OSError as exc:
                raise RelayError(f"cannot start RPC relay {self._describe}: {exc}") from exc
        return self._proc

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        request = self.encode_rpc_request(method, params)
        with self._lock:
            proc = self._process()
            assert proc.stdin is not None
            assert proc.stdout is not None
            try:
                proc.stdin.write(request.replace(b"\n", b"") + b"\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
            except OSError as exc:
                raise RelayError(f"RPC relay {self._describe} failed: {exc}") from exc
            if not line:
                proc.kill()
                stderr = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
                raise RelayError(f"RPC relay {self._describe} exited ({proc.wait()}): {stderr or 'no output'}")
        return self.decode_rpc_response(line)

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None


def connect(url: str, via: list[str] | None = None, timeout: float = 120) -> Web3:
    """A Web3 for `url`, directly or relayed through `via`; PoA (Clique) block extraData accepted."""
    if via:
        provider: JSONBaseProvider = RelayProvider(via, url)
    else:
        provider = Web3.HTTPProvider(url, request_kwargs={"timeout": timeout})
    w3 = Web3(provider)
    # Clique puts the sealer signature in extraData (97+ bytes); web3 refuses such blocks otherwise.
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3
