"""Contracts on an in-process EVM (eth-tester/py-evm, Paris rules): one deployment per session, reset per test."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from web3 import EthereumTesterProvider, Web3
from web3.datastructures import AttributeDict

from heliogrid_testing.evm import Chain, deploy, paris_tester


@pytest.fixture(scope="session")
def deployed() -> Chain:
    """Deployed once: every test gets it through `chain`, which reverts whatever the test did."""
    return deploy()


@pytest.fixture
def chain(deployed: Chain) -> Iterator[Chain]:
    snapshot = deployed.tester.take_snapshot()
    yield deployed
    deployed.tester.revert_to_snapshot(snapshot)


class _RpcHandler(BaseHTTPRequestHandler):
    """Serves JSON-RPC from an EthereumTesterProvider, through web3's eth-tester middleware (camelCase keys)."""

    request_func: Any

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        response = dict(type(self).request_func(request["method"], request["params"]))
        body = json.dumps({**response, "jsonrpc": "2.0", "id": request["id"]}, default=_jsonable).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict | AttributeDict):
        return dict(value)
    raise TypeError(repr(value))


@pytest.fixture
def loopback_rpc() -> Iterator[str]:
    """eth-tester behind a JSON-RPC HTTP server on 127.0.0.1, standing in for a node's loopback RPC."""
    w3 = Web3(EthereumTesterProvider(paris_tester()))
    request_func = w3.provider.request_func(w3, w3.middleware_onion)
    handler = type("Handler", (_RpcHandler,), {"request_func": staticmethod(request_func)})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
