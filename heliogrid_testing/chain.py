"""The lab's chain as the system tests read it: each node's JSON-RPC over its IPC socket, its geth console for what
only JavaScript says well, and the contracts through a node's RPC.

Nothing here connects from this machine to a lab address. `rpc` speaks to a node's IPC socket, a file in the
container reached through /proc/<pid>/root (no process is started: a poll costs microseconds, where a console
costs 0.4 s of CPU and 2.7 s on the emulated arm64 Pi, measured 2026-12-03); consoles run inside the containers
(`geth attach` over the same socket); contract calls go through a python3 relay started with `podman exec -i` on
the RPC host, the way the contracts role reaches it (contracts/heliogrid_contracts/rpc.py).
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from heliogrid_contracts.rpc import connect
from web3.logs import DISCARD

from lab import lab
from lab.geth_defaults import geth_defaults

IPC = geth_defaults()["geth_datadir"] + "/geth.ipc"
RPC_URL = "http://127.0.0.1:8545"  # the stats node's loopback HTTP-RPC (roles/geth geth_http_*)
RECORD = lab.ROOT / "inventories" / "lab" / "state" / "contracts.json"  # roles/contracts writes it
ZERO = "0x" + "0" * 40
T = TypeVar("T")


@cache
def period() -> int:
    """Seconds between blocks: clique_genesis_period of inventories/lab/group_vars/all/network.yml."""
    settings = yaml.safe_load((lab.ROOT / "inventories" / "lab" / "group_vars" / "all" / "network.yml").read_text())
    return int(settings["clique_genesis_period"])


def attach(host: str, expression: str, check: bool = True, timeout: float | None = None) -> Any:
    """Evaluate a JavaScript expression in the host's geth console and return it as Python (None on failure).

    check=True raises when the console fails or times out; check=False returns None then.
    """
    command = ("geth", "attach", "--exec", f"JSON.stringify({expression})", IPC)
    try:
        result = lab.podman_exec(f"hg-{host}", *command, check=check, timeout=timeout)
    except subprocess.TimeoutExpired:
        if check:
            raise
        return None
    return json.loads(json.loads(result.stdout)) if result.returncode == 0 else None


_pids: dict[str, tuple[int, str]] = {}  # host: (PID, its start time), so that a PID taken by another process is seen
_pids_lock = threading.Lock()


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def container_pid(host: str, refresh: bool = False) -> int | None:
    """The PID of the host's container as this machine sees it (its /proc/<pid>/root is the container's file system
    and /proc/<pid>/ns/net its network); None if the container is not running. Kept until `refresh` or until that
    process is gone: a container re-created or restarted gets a new PID, which callers ask for when the old one
    fails them."""
    with _pids_lock:
        known = _pids.get(host)
        if refresh or known is None or _start_time(known[0]) != known[1]:
            found = lab.podman("inspect", "--format", "{{.State.Pid}}", f"hg-{host}", check=False)
            pid = int(found.stdout.strip() or 0) if found.returncode == 0 else 0
            started = _start_time(pid) if pid > 0 else None
            if started is None:
                _pids.pop(host, None)
                return None
            _pids[host] = (pid, started)
        return _pids[host][0]


def in_network_of(host: str, *argv: str, timeout: float) -> subprocess.CompletedProcess | None:
    """Run a program of this machine inside the host's network namespace (nsenter): it sees the container's
    interfaces and addresses as the container's own programs do, without starting a process in the container (under
    qemu a python3 there costs 2 s of CPU). None when the container is not running or the program times out."""
    for refresh in (False, True):
        pid = container_pid(host, refresh=refresh)
        if pid is None:
            return None
        try:
            result = subprocess.run(
                ["nsenter", f"--net=/proc/{pid}/ns/net", *argv], capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return None
        if result.returncode == 0 or _start_time(pid) is not None:
            return result  # the program's own answer; otherwise the container went away under it: ask again
    return None


def _ipc_call(path: str, request: bytes, timeout: float) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(request)
        buffer, decoder = b"", json.JSONDecoder()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"{path}: closed before a whole answer")
            buffer += chunk
            try:
                answer, _ = decoder.raw_decode(buffer.decode().lstrip())
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue  # not all of it yet
            return answer


def rpc(host: str, method: str, *params: Any, check: bool = True, timeout: float | None = None) -> Any:
    """Call a JSON-RPC method on the host's geth over its IPC socket and return the result.

    check=True raises LabError when the node does not answer (stopped, restarting, container gone) or answers with
    an error; check=False returns None then. A failed connection asks for the container's PID again once (a
    container re-created has a new one).
    """
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    failure = "the container is not running"
    for refresh in (False, True):
        pid = container_pid(host, refresh=refresh)
        if pid is None:
            break
        try:
            answer = _ipc_call(f"/proc/{pid}/root{IPC}", request, timeout or 60)
        except TimeoutError as error:
            failure = f"no answer within {timeout or 60} s ({error})"
            break  # the node is there and slow: asking again would only double the wait
        except OSError as error:
            failure = str(error)
            continue
        if "error" in answer:
            failure = f"error {answer['error']}"
            break
        return answer.get("result")
    if check:
        raise lab.LabError(f"{host}: {method}{list(params)} over IPC failed: {failure}")
    return None


def head_number(host: str, check: bool = True, timeout: float | None = None) -> int | None:
    """The host's head block number (None, with check=False, when its node does not answer)."""
    found = rpc(host, "eth_blockNumber", check=check, timeout=timeout)
    return int(found, 16) if found is not None else None


def block_hash(host: str, number: int) -> str | None:
    found = rpc(host, "eth_getBlockByNumber", hex(number), False)
    return found["hash"] if found else None


def peers(host: str) -> list[dict[str, Any]]:
    """admin_peers: the node's connected peers (id, enode, network.remoteAddress, ...)."""
    return rpc(host, "admin_peers")


def signers(host: str, check: bool = True) -> list[str] | None:
    """The Clique signers at the host's head, as clique_getSigners returns them."""
    return rpc(host, "clique_getSigners", check=check)


def eventually(probe: Callable[[], T], timeout: float, interval: float = 2.0) -> T:
    """Poll probe() until it returns something truthy; return the last value either way."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = probe()
    return value


def on_each(hosts: list[str], fn: Callable[[str], T]) -> dict[str, T]:
    """fn(host) for every host at once (a console under qemu takes seconds; the hosts need not wait in turn)."""
    with ThreadPoolExecutor(max_workers=max(len(hosts), 1)) as pool:
        return dict(zip(hosts, pool.map(fn, hosts), strict=True))


def node_ids(hosts: list[str]) -> dict[str, str]:
    return on_each(hosts, lambda h: rpc(h, "admin_nodeInfo")["id"])


@dataclass(frozen=True)
class Head:
    number: int
    hash: str
    parent: str
    time: int
    peers: list[str]

    def hash_at(self, number: int) -> str | None:
        return {self.number: self.hash, self.number - 1: self.parent}.get(number)


def heads(hosts: list[str]) -> dict[str, Head | None]:
    """Each host's view of its chain head (None when its node does not answer)."""

    def view(host: str) -> Head | None:
        block = rpc(host, "eth_getBlockByNumber", "latest", False, check=False, timeout=30)
        connected = rpc(host, "admin_peers", check=False, timeout=30)
        if not block or connected is None:
            return None
        number, time_ = int(block["number"], 16), int(block["timestamp"], 16)
        return Head(number, block["hash"], block["parentHash"], time_, [p["id"] for p in connected])

    return on_each(hosts, view)


def in_step(views: dict[str, Head | None]) -> bool:
    """Every node within one block of the others, all on the same block at the lowest common height."""
    if not views or any(v is None for v in views.values()):
        return False
    numbers = [v.number for v in views.values() if v is not None]
    common = min(numbers)
    hashes = {v.hash_at(common) for v in views.values() if v is not None}
    return common > 0 and max(numbers) - common <= 1 and len(hashes) == 1 and None not in hashes


def heads_in_step(hosts: list[str]) -> bool:
    return in_step(heads(hosts))


# --- the contracts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Meter:
    """EnergyMarket.getMeter(meter), field by field (contracts/INTERFACE.md)."""

    owner: str
    capacity_watts: int
    active: bool
    registered_at: int
    last_report_at: int
    total_wh: int
    credited_kwh: int


@dataclass(frozen=True)
class Offer:
    """One OfferCreated event: what a seller put up for sale after a report, at its asking price."""

    offer_id: int
    seller: str
    meter: str
    kwh: int
    price: int  # token base units per kWh


@dataclass(frozen=True)
class Purchase:
    """One EnergyPurchased event, with the token Transfers of the same transaction."""

    block: int
    tx_hash: str
    offer_id: int
    buyer: str
    seller: str
    kwh: int
    cost: int
    transfers: tuple[tuple[str, str, int], ...]  # (from, to, value) of the token's Transfer events in the transaction


@dataclass(frozen=True)
class Report:
    """One ProductionReported event: the cumulative total a meter reported and what it was credited for it."""

    block: int
    timestamp: int
    tx_hash: str
    total_wh: int
    credited_kwh: int
    tokens_minted: int


class Contracts:
    """EnergyMarket and EnergyToken as deployed on the lab, read through a node's RPC relayed by `podman exec`."""

    def __init__(
        self, rpc_host: str = "stats1", *, via: list[str] | None = None, url: str = RPC_URL, record: Path = RECORD
    ) -> None:
        """Read through `rpc_host`'s loopback RPC (`via` and `url` override the relay, e.g. for a local chain)."""
        self.record = json.loads(record.read_text())
        self.w3 = connect(url, via=["podman", "exec", "-i", f"hg-{rpc_host}"] if via is None else via, timeout=60)
        market, token = self.record["market"], self.record["token"]
        self.market = self.w3.eth.contract(address=self.w3.to_checksum_address(market["address"]), abi=market["abi"])
        self.token = self.w3.eth.contract(address=self.w3.to_checksum_address(token["address"]), abi=token["abi"])
        self.first_block = int(market.get("block") or 0)

    def close(self) -> None:
        self.w3.provider.close()

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def timestamp(self, block: int) -> int:
        return int(self.w3.eth.get_block(block)["timestamp"])

    def meter(self, address: str, block: int | str = "latest") -> Meter:
        m = self.market.functions.getMeter(self.w3.to_checksum_address(address)).call(block_identifier=block)
        return Meter(m[0], int(m[1]), bool(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]))

    def tariff(self, block: int | str = "latest") -> int:
        return int(self.market.functions.tariff().call(block_identifier=block))

    def tolerance_percent(self, block: int | str = "latest") -> int:
        return int(self.market.functions.tolerancePercent().call(block_identifier=block))

    def max_report_seconds(self, block: int | str = "latest") -> int:
        return int(self.market.functions.maxReportSeconds().call(block_identifier=block))

    def total_supply(self, block: int | str = "latest") -> int:
        return int(self.token.functions.totalSupply().call(block_identifier=block))

    def registered_meters(self, to_block: int | str = "latest") -> list[str]:
        """Every meter ever registered (MeterRegistered events), checksummed, in registration order."""
        events = self.market.events.MeterRegistered().get_logs(from_block=self.first_block, to_block=to_block)
        return [self.w3.to_checksum_address(e["args"]["meter"]) for e in events]

    def reports(self, meter: str, to_block: int | str = "latest") -> list[Report]:
        """The meter's ProductionReported events, oldest first."""
        events = self.market.events.ProductionReported().get_logs(
            argument_filters={"meter": self.w3.to_checksum_address(meter)},
            from_block=self.first_block,
            to_block=to_block,
        )
        times: dict[int, int] = {}
        found = []
        for e in sorted(events, key=lambda e: (e["blockNumber"], e["logIndex"])):
            block = int(e["blockNumber"])
            if block not in times:
                times[block] = self.timestamp(block)
            args = e["args"]
            found.append(
                Report(
                    block,
                    times[block],
                    e["transactionHash"].to_0x_hex(),
                    int(args["totalWh"]),
                    int(args["creditedKWh"]),
                    int(args["tokensMinted"]),
                )
            )
        return found

    def minted_to(self, owner: str, to_block: int | str = "latest") -> int:
        """Token base units minted to `owner` (ERC-20 Transfer events from the zero address)."""
        events = self.token.events.Transfer().get_logs(
            argument_filters={"from": ZERO, "to": self.w3.to_checksum_address(owner)},
            from_block=int(self.record["token"].get("block") or 0),
            to_block=to_block,
        )
        return sum(int(e["args"]["value"]) for e in events)

    def offers(self, to_block: int | str = "latest") -> dict[int, Offer]:
        """Every offer ever created (OfferCreated events), by offer id."""
        events = self.market.events.OfferCreated().get_logs(from_block=self.first_block, to_block=to_block)
        return {
            int(e["args"]["offerId"]): Offer(
                int(e["args"]["offerId"]),
                self.w3.to_checksum_address(e["args"]["seller"]),
                self.w3.to_checksum_address(e["args"]["meter"]),
                int(e["args"]["kWh"]),
                int(e["args"]["pricePerKWh"]),
            )
            for e in events
        }

    def purchases(self, buyer: str | None = None, to_block: int | str = "latest") -> list[Purchase]:
        """EnergyPurchased events (of `buyer`, or everyone's), oldest first, each with its transaction's token
        Transfers read from the receipt."""
        filters = {} if buyer is None else {"buyer": self.w3.to_checksum_address(buyer)}
        events = self.market.events.EnergyPurchased().get_logs(
            argument_filters=filters, from_block=self.first_block, to_block=to_block
        )
        found = []
        for e in sorted(events, key=lambda e: (e["blockNumber"], e["logIndex"])):
            receipt = self.w3.eth.get_transaction_receipt(e["transactionHash"])
            transfers = tuple(
                (
                    self.w3.to_checksum_address(t["args"]["from"]),
                    self.w3.to_checksum_address(t["args"]["to"]),
                    int(t["args"]["value"]),
                )
                for t in self.token.events.Transfer().process_receipt(receipt, errors=DISCARD)
            )
            args = e["args"]
            found.append(
                Purchase(
                    int(e["blockNumber"]),
                    e["transactionHash"].to_0x_hex(),
                    int(args["offerId"]),
                    self.w3.to_checksum_address(args["buyer"]),
                    self.w3.to_checksum_address(args["seller"]),
                    int(args["kWh"]),
                    int(args["cost"]),
                    transfers,
                )
            )
        return found

    def purchased_kwh(self, buyer: str, block: int | str = "latest") -> int:
        return int(self.market.functions.purchasedKWh(self.w3.to_checksum_address(buyer)).call(block_identifier=block))

    def balance(self, owner: str, block: int | str = "latest") -> int:
        return int(self.token.functions.balanceOf(self.w3.to_checksum_address(owner)).call(block_identifier=block))
