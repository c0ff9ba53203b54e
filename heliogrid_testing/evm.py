"""The contracts on an in-process EVM (eth-tester/py-evm, Paris rules), deployed the way the contracts role does it.

Shared by tests/contracts (its conftest adds the fixtures) and tests/bad_inputs.
"""

from __future__ import annotations

import ast
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth.vm.forks import ParisVM
from eth_abi import decode, encode
from eth_tester import EthereumTester, PyEVMBackend
from eth_utils import keccak
from heliogrid_contracts.deploy import Deployer, DeploySpec
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.logs import DISCARD

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS_DIR = ROOT / "contracts"

KWH = 1000  # Wh
TOKEN = 10**18  # base units of one whole token (18 decimals)
TARIFF = 2 * TOKEN  # minted to the owner per credited kWh
TOLERANCE = 10  # percent
CAPACITY = 3600  # W: with this capacity 1 s of elapsed time allows exactly 1 Wh (before tolerance)
ADMIN_DELAY = 2 * 24 * 3600  # s before a new admin may accept the handover
REPORT_WINDOW = 24 * 3600  # s: the most elapsed time one report may count


def error_data(contract: Contract, name: str, *args: Any) -> bytes:
    """The revert data of custom error `name(args)` as declared in `contract`'s ABI."""
    for item in contract.abi:
        if item["type"] == "error" and item["name"] == name:
            types = [i["type"] for i in item["inputs"]]
            return keccak(text=f"{name}({','.join(types)})")[:4] + encode(types, list(args))
    raise KeyError(f"{name} is not an error of this ABI")


def revert_data(exc: BaseException) -> bytes:
    """Revert data out of whatever eth-tester/web3 raised."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    message = str(exc.args[0]) if exc.args else ""
    prefix = "execution reverted: "
    if message.startswith(prefix + "b'") or message.startswith(prefix + 'b"'):
        return ast.literal_eval(message[len(prefix) :])
    raise AssertionError(f"not a revert with data: {exc!r}")


def describe_revert(data: bytes, *contracts: Contract) -> str:
    """Revert data as a reader sees it, `Name(arg=value, ...)`, from the custom errors of `contracts`' ABIs."""
    for contract in contracts:
        for item in contract.abi:
            if item["type"] != "error":
                continue
            types = [i["type"] for i in item["inputs"]]
            if keccak(text=f"{item['name']}({','.join(types)})")[:4] == data[:4]:
                values = decode(types, data[4:])
                args = ", ".join(f"{i['name']}={_show(v)}" for i, v in zip(item["inputs"], values, strict=True))
                return f"{item['name']}({args})"
    return f"unknown revert 0x{data.hex()}"


def _show(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


@dataclass
class Chain:
    """The deployed contracts, the named accounts and clock control.

    `registrar` deployed the contracts and registers meters (the deployer's key, holding REGISTRAR_ROLE only);
    `admin` is the inventory's admin (DEFAULT_ADMIN_ROLE, TARIFF_ROLE, PAUSER_ROLE), another account.
    """

    tester: EthereumTester
    w3: Web3
    token: Contract
    market: Contract
    admin: str
    registrar: str
    meter: str
    owner: str
    buyer: str
    outsider: str

    def now(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]

    def at(self, timestamp: int) -> None:
        """Make the next transaction's block carry `timestamp`."""
        self.tester.time_travel(timestamp)

    def send(self, fn: Any, sender: str) -> dict[str, Any]:
        receipt = self.w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
        assert receipt["status"] == 1
        return receipt

    def reverts(self, fn: Any, sender: str, error: bytes) -> None:
        """`fn` sent by `sender` reverts with exactly `error` (and so changes nothing)."""
        with pytest.raises(Exception) as info:  # noqa: PT011 - eth-tester and web3 raise different types
            fn.transact({"from": sender})
        assert revert_data(info.value) == error

    def events(self, receipt: dict[str, Any], contract: Contract, name: str) -> list[dict[str, Any]]:
        return [dict(e["args"]) for e in getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)]

    def register(self, meter: str | None = None, owner: str | None = None, capacity: int = CAPACITY) -> int:
        """Register a meter; returns its registration timestamp."""
        receipt = self.send(
            self.market.functions.registerMeter(meter or self.meter, owner or self.owner, capacity), self.registrar
        )
        return self.w3.eth.get_block(receipt["blockNumber"])["timestamp"]

    def report(self, total_wh: int, at: int, meter: str | None = None) -> dict[str, Any]:
        self.at(at)
        return self.send(self.market.functions.reportProduction(total_wh), meter or self.meter)


def paris_tester() -> EthereumTester:
    """An in-process chain on Paris rules: like the Clique chain, it has no PUSH0 (Shanghai)."""
    return EthereumTester(PyEVMBackend(vm_configuration=((0, ParisVM),)))


def deploy() -> Chain:
    """A fresh in-process chain with the token and the market deployed by heliogrid_contracts.deploy."""
    tester = paris_tester()
    w3 = Web3(EthereumTesterProvider(tester))
    registrar, meter, owner, buyer, outsider, admin = w3.eth.accounts[:6]
    key = tester.backend.account_keys[0].to_hex()
    with tempfile.TemporaryDirectory() as tmp:
        spec = DeploySpec(
            token_name="Helio kWh",
            token_symbol="HKWH",
            tariff=TARIFF,
            tolerance_percent=TOLERANCE,
            admin=admin,
            admin_delay_seconds=ADMIN_DELAY,
            max_report_seconds=REPORT_WINDOW,
        )
        result = Deployer(w3, key, Path(tmp) / "contracts.json").run(spec)
    assert result.record is not None
    token = w3.eth.contract(address=result.record["token"]["address"], abi=result.record["token"]["abi"])
    market = w3.eth.contract(address=result.record["market"]["address"], abi=result.record["market"]["abi"])
    return Chain(tester, w3, token, market, admin, registrar, meter, owner, buyer, outsider)
