"""The chain as the agent sees it: a small interface, and its web3.py implementation over the node's RPC."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

ERC20_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "account", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "allowance",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "value", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
]


class NodeUnavailable(Exception):
    """The local node did not answer (down, restarting, or the RPC timed out)."""


class SendRejected(Exception):
    """The node refused a raw transaction (the message is the node's)."""


class DeploymentError(ValueError):
    """The deployment record is missing or lacks what the agent needs."""


@dataclass(frozen=True)
class MeterInfo:
    owner: str
    capacity_watts: int
    active: bool
    registered_at: int
    last_report_at: int
    total_wh: int
    credited_kwh: int

    @property
    def registered(self) -> bool:
        return self.registered_at != 0


@dataclass(frozen=True)
class Receipt:
    status: int
    block_number: int


@dataclass(frozen=True)
class Offer:
    offer_id: int
    seller: str
    meter: str
    remaining_kwh: int
    price_per_kwh: int
    open: bool


@dataclass(frozen=True)
class OfferEvent:
    """One of the market's offer events, as the agent's offer book reads them (eth_getLogs)."""

    kind: str  # created | purchased | cancelled
    offer_id: int
    block: int
    seller: str = ""  # created only
    meter: str = ""  # created only
    kwh: int = 0  # created: offered; purchased: bought
    price_per_kwh: int = 0  # created only


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    market_address: str
    market_abi: list[dict[str, Any]]
    token_address: str | None
    token_abi: list[dict[str, Any]]
    market_block: int = 0  # where the market's events start (the record's market.block)


def load_deployment(path: str | Path) -> Deployment:
    """Read the deployer's record: {"chainId", "market": {"address", "abi"}, "token": {"address", "abi"}}."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeploymentError(f"deployment record {path} does not exist (the deploy play writes it)") from None
    except (OSError, ValueError) as exc:
        raise DeploymentError(f"cannot read deployment record {path}: {exc}") from None
    try:
        market = record["market"]
        chain_id = int(record["chainId"])
        market_address, market_abi = market["address"], market["abi"]
    except (KeyError, TypeError, ValueError) as exc:
        raise DeploymentError(
            f"deployment record {path} lacks {exc}; expected chainId, market.address and market.abi"
        ) from None
    token = record.get("token") or {}
    try:
        market_block = int(market.get("block") or 0)
    except (TypeError, ValueError):
        block = market.get("block")
        raise DeploymentError(f"deployment record {path}: market.block = {block!r} is not a block number") from None
    return Deployment(
        chain_id, market_address, market_abi, token.get("address"), token.get("abi") or ERC20_ABI, market_block
    )


class Chain(Protocol):
    """What the reporter and the UI need from the chain. Every method may raise NodeUnavailable."""

    market_address: str
    market_block: int

    def chain_id(self) -> int: ...
    def block_number(self) -> int: ...
    def latest_timestamp(self) -> int: ...
    def syncing(self) -> bool: ...
    def peer_count(self) -> int | None: ...
    def nonce(self, address: str, block: str) -> int: ...
    def gas_price(self) -> int: ...
    def send_raw(self, raw: bytes) -> str: ...
    def receipt(self, tx_hash: str) -> Receipt | None: ...
    def get_meter(self, address: str) -> MeterInfo: ...
    def tolerance_percent(self) -> int: ...
    def max_report_seconds(self) -> int | None: ...
    def paused(self) -> bool: ...
    def ether_balance(self, address: str) -> int: ...
    def token_balance(self, address: str) -> int: ...
    def allowance(self, owner: str, spender: str) -> int: ...
    def get_offer(self, offer_id: int) -> Offer: ...
    def next_offer_id(self) -> int: ...
    def head(self) -> tuple[int, str]: ...
    def block_hash(self, number: int) -> str | None: ...
    def offer_events(self, from_block: int, to_block: int) -> list[OfferEvent]: ...
    def ask_price(self, owner: str) -> int: ...
    def report_call(self, total_wh: int) -> dict[str, Any]: ...
    def approve_call(self, spender: str, amount: int) -> dict[str, Any]: ...
    def buy_call(self, offer_id: int, kwh: int) -> dict[str, Any]: ...
    def ask_call(self, price_per_kwh: int) -> dict[str, Any]: ...


class Web3Chain:
    """Chain over HTTP JSON-RPC with web3.py; connection failures become NodeUnavailable."""

    def __init__(self, rpc_url: str, deployment: Deployment, timeout: float = 5.0, w3: Any | None = None) -> None:
        from web3 import Web3

        self._web3_cls = Web3
        if w3 is None:  # tests pass a Web3 over eth-tester
            kwargs: dict[str, Any] = {"request_kwargs": {"timeout": timeout}, "exception_retry_configuration": None}
            w3 = Web3(Web3.HTTPProvider(rpc_url, **kwargs))
            # Clique puts the sealer's signature in extraData (97 bytes): without this, get_block fails.
            from web3.middleware import ExtraDataToPOAMiddleware

            w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        self.w3 = w3
        self.deployment = deployment
        self.market_address = Web3.to_checksum_address(deployment.market_address)
        self.market = self.w3.eth.contract(address=self.market_address, abi=deployment.market_abi)
        self.market_block = deployment.market_block
        self._token: Any | None = None
        # A market deployed before the report window existed has none (its record's ABI lacks it).
        self._has_report_window = any(e.get("name") == "maxReportSeconds" for e in deployment.market_abi)
        self._report_window: int | None = None

    def _guard(self, fn: Any, *args: Any) -> Any:
        import requests
        from web3.exceptions import ProviderConnectionError, TimeExhausted

        try:
            return fn(*args)
        except (requests.RequestException, OSError, ProviderConnectionError, TimeExhausted) as exc:
            raise NodeUnavailable(str(exc) or type(exc).__name__) from exc

    @property
    def token(self) -> Any:
        if self._token is None:
            address = self.deployment.token_address or self._guard(self.market.functions.token().call)
            self._token = self.w3.eth.contract(
                address=self._web3_cls.to_checksum_address(address), abi=self.deployment.token_abi
            )
        return self._token

    def chain_id(self) -> int:
        return int(self._guard(lambda: self.w3.eth.chain_id))

    def block_number(self) -> int:
        return int(self._guard(lambda: self.w3.eth.block_number))

    def latest_timestamp(self) -> int:
        return int(self._guard(self.w3.eth.get_block, "latest")["timestamp"])

    def syncing(self) -> bool:
        return bool(self._guard(lambda: self.w3.eth.syncing))

    def peer_count(self) -> int | None:
        from web3.exceptions import Web3Exception

        try:
            return int(self._guard(lambda: self.w3.net.peer_count))
        except (Web3Exception, ValueError, NotImplementedError):
            return None

    def nonce(self, address: str, block: str) -> int:
        return int(self._guard(self.w3.eth.get_transaction_count, address, block))

    def gas_price(self) -> int:
        return int(self._guard(lambda: self.w3.eth.gas_price))

    def send_raw(self, raw: bytes) -> str:
        from web3.exceptions import Web3RPCError

        try:
            return self._guard(self.w3.eth.send_raw_transaction, raw).to_0x_hex()
        except Web3RPCError as exc:
            raise SendRejected(exc.message) from exc
        except ValueError as exc:  # eth-tester raises plain validation errors
            raise SendRejected(str(exc)) from exc

    def receipt(self, tx_hash: str) -> Receipt | None:
        from web3.exceptions import TransactionNotFound

        try:
            r = self._guard(self.w3.eth.get_transaction_receipt, tx_hash)
        except TransactionNotFound:
            return None
        return Receipt(status=int(r["status"]), block_number=int(r["blockNumber"]))

    def get_meter(self, address: str) -> MeterInfo:
        m = self._guard(self.market.functions.getMeter(address).call)
        return MeterInfo(m[0], int(m[1]), bool(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]))

    def tolerance_percent(self) -> int:
        return int(self._guard(self.market.functions.tolerancePercent().call))

    def max_report_seconds(self) -> int | None:
        if self._report_window is None and self._has_report_window:  # immutable in the contract: read once
            self._report_window = int(self._guard(self.market.functions.maxReportSeconds().call))
        return self._report_window

    def paused(self) -> bool:
        return bool(self._guard(self.market.functions.paused().call))

    def ether_balance(self, address: str) -> int:
        return int(self._guard(self.w3.eth.get_balance, address))

    def token_balance(self, address: str) -> int:
        return int(self._guard(self.token.functions.balanceOf(address).call))

    def allowance(self, owner: str, spender: str) -> int:
        return int(self._guard(self.token.functions.allowance(owner, spender).call))

    def get_offer(self, offer_id: int) -> Offer:
        o = self._guard(self.market.functions.getOffer(offer_id).call)
        return Offer(offer_id, o[0], o[1], int(o[2]), int(o[3]), bool(o[4]))

    def next_offer_id(self) -> int:
        return int(self._guard(self.market.functions.nextOfferId().call))

    def ask_price(self, owner: str) -> int:
        return int(self._guard(self.market.functions.askPrice(owner).call))

    def head(self) -> tuple[int, str]:
        block = self._guard(self.w3.eth.get_block, "latest")
        return int(block["number"]), block["hash"].to_0x_hex()

    def block_hash(self, number: int) -> str | None:
        from web3.exceptions import BlockNotFound

        try:
            return self._guard(self.w3.eth.get_block, number)["hash"].to_0x_hex()
        except BlockNotFound:
            return None

    def offer_events(self, from_block: int, to_block: int) -> list[OfferEvent]:
        """The market's OfferCreated, EnergyPurchased and OfferCancelled events in a block range, in chain order."""
        decoders = {}
        for name in ("OfferCreated", "EnergyPurchased", "OfferCancelled"):
            event = getattr(self.market.events, name)()
            decoders[event.topic] = event
        logs = self._guard(
            self.w3.eth.get_logs,
            {
                "address": self.market_address,
                "fromBlock": from_block,
                "toBlock": to_block,
                "topics": [list(decoders)],
            },
        )
        events = []
        for entry in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])):
            topic = entry["topics"][0]
            topic = topic.to_0x_hex() if hasattr(topic, "to_0x_hex") else str(topic)
            decoded = decoders[topic].process_log(entry)
            a, block = decoded["args"], int(entry["blockNumber"])
            if decoded["event"] == "OfferCreated":
                events.append(
                    OfferEvent("created", int(a["offerId"]), block, a["seller"], a["meter"], int(a["kWh"]),
                               int(a["pricePerKWh"]))
                )  # fmt: skip
            elif decoded["event"] == "EnergyPurchased":
                events.append(OfferEvent("purchased", int(a["offerId"]), block, kwh=int(a["kWh"])))
            else:
                events.append(OfferEvent("cancelled", int(a["offerId"]), block))
        return events

    def report_call(self, total_wh: int) -> dict[str, Any]:
        return {"to": self.market_address, "data": self.market.encode_abi("reportProduction", [total_wh])}

    def approve_call(self, spender: str, amount: int) -> dict[str, Any]:
        return {"to": self.token.address, "data": self.token.encode_abi("approve", [spender, amount])}

    def buy_call(self, offer_id: int, kwh: int) -> dict[str, Any]:
        return {"to": self.market_address, "data": self.market.encode_abi("buy", [offer_id, kwh])}

    def ask_call(self, price_per_kwh: int) -> dict[str, Any]:
        return {"to": self.market_address, "data": self.market.encode_abi("setAskPrice", [price_per_kwh])}
