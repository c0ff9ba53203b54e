"""Deploy EnergyToken + EnergyMarket once, then converge their meters and meter funding.

Idempotent: with a deployment record present, the code at the recorded addresses is checked against
the recorded artifacts and nothing is redeployed; a recorded address without that code is an error
(`DeployError`), never a silent redeploy. In check mode nothing is sent; the plan is returned.

The deployer is not the admin. The admin (an address from the inventory: an offline key or a multisig)
gets DEFAULT_ADMIN_ROLE on both contracts, TARIFF_ROLE and PAUSER_ROLE; the market alone gets MINTER_ROLE;
the deployer keeps REGISTRAR_ROLE (meters) and its ether (their gas), nothing else. Every run checks those
roles on chain. Tariff and tolerance are deployment parameters: afterwards they belong to the admin, and a
difference from the inventory is reported as a warning, not changed.

The Ansible module `heliogrid_contracts_deploy` (roles/contracts/library) is a thin wrapper around
`Deployer.run`; the tests and the gas benchmark use the same code.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.utils import get_create_address

from heliogrid_contracts.artifacts import BUILD_DIR, Artifact

UINT32_MAX = 2**32 - 1
UINT48_MAX = 2**48 - 1
MAX_TOLERANCE_PERCENT = 100
MAX_TARIFF = 10**24  # EnergyMarket.MAX_TARIFF
DEFAULT_ADMIN_DELAY_SECONDS = 2 * 24 * 3600
DEFAULT_MAX_REPORT_SECONDS = 24 * 3600


class DeployError(RuntimeError):
    """The deployment cannot proceed; the message says what was found and what was expected."""


def _address(value: Any, what: str) -> str:
    if not isinstance(value, str) or not Web3.is_address(value):
        raise DeployError(f"{what}: expected a 0x-prefixed 20-byte hex address, got {value!r}")
    address = Web3.to_checksum_address(value)
    if int(address, 16) == 0:
        raise DeployError(f"{what}: the zero address is not allowed")
    return address


def _int(value: Any, what: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise DeployError(f"{what}: expected an integer, got {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise DeployError(f"{what}: expected an integer, got {value!r}") from None
    if number < low or (high is not None and number > high):
        raise DeployError(f"{what}: expected {low}..{high if high is not None else '∞'}, got {number}")
    return number


@dataclass(frozen=True)
class MeterSpec:
    """A Pi's meter as the inventory describes it."""

    address: str
    owner: str
    capacity_watts: int
    active: bool = True

    @classmethod
    def from_dict(cls, data: Any, index: int) -> MeterSpec:
        where = f"meters[{index}]"
        if not isinstance(data, dict):
            raise DeployError(f"{where}: expected a mapping with address, owner, capacity_watts; got {data!r}")
        unknown = set(data) - {"address", "owner", "capacity_watts", "active", "name"}
        if unknown:
            raise DeployError(f"{where}: unknown keys {sorted(unknown)}; expected address, owner, capacity_watts")
        label = f"{where} ({data['name']})" if data.get("name") else where
        active = data.get("active", True)
        if not isinstance(active, bool):
            raise DeployError(f"{label}.active: expected true or false, got {active!r}")
        return cls(
            address=_address(data.get("address"), f"{label}.address"),
            owner=_address(data.get("owner"), f"{label}.owner"),
            capacity_watts=_int(data.get("capacity_watts"), f"{label}.capacity_watts", 1, UINT32_MAX),
            active=active,
        )


@dataclass(frozen=True)
class DeploySpec:
    """What the chain should hold after a run."""

    token_name: str
    token_symbol: str
    tariff: int  # token base units minted per credited kWh
    tolerance_percent: int
    admin: str  # DEFAULT_ADMIN_ROLE of both contracts, TARIFF_ROLE and PAUSER_ROLE
    admin_delay_seconds: int = DEFAULT_ADMIN_DELAY_SECONDS  # wait before a new admin may accept
    max_report_seconds: int = DEFAULT_MAX_REPORT_SECONDS  # most elapsed time one report may count
    meters: tuple[MeterSpec, ...] = ()
    meter_min_balance_wei: int = 0  # top a meter up when its balance is below this...
    meter_fund_wei: int = 0  # ...to this balance
    expected_chain_id: int | None = None

    def __post_init__(self) -> None:
        for what, text in (("token_name", self.token_name), ("token_symbol", self.token_symbol)):
            if not isinstance(text, str) or not text.strip():
                raise DeployError(f"{what}: expected a non-empty string, got {text!r}")
        _int(self.tariff, "tariff", 0, MAX_TARIFF)
        _int(self.tolerance_percent, "tolerance_percent", 0, MAX_TOLERANCE_PERCENT)
        _address(self.admin, "admin")
        _int(self.admin_delay_seconds, "admin_delay_seconds", 0, UINT48_MAX)
        _int(self.max_report_seconds, "max_report_seconds", 1, UINT32_MAX)
        _int(self.meter_min_balance_wei, "meter_min_balance_wei", 0)
        _int(self.meter_fund_wei, "meter_fund_wei", self.meter_min_balance_wei)
        seen: set[str] = set()
        for meter in self.meters:
            if meter.address in seen:
                raise DeployError(f"meter {meter.address} is listed twice")
            seen.add(meter.address)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploySpec:
        meters = data.get("meters") or []
        if not isinstance(meters, list):
            raise DeployError(f"meters: expected a list, got {meters!r}")
        chain_id = data.get("expected_chain_id")
        return cls(
            token_name=data["token_name"],
            token_symbol=data["token_symbol"],
            tariff=_int(data["tariff"], "tariff", 0, MAX_TARIFF),
            tolerance_percent=_int(data["tolerance_percent"], "tolerance_percent", 0, MAX_TOLERANCE_PERCENT),
            admin=_address(data.get("admin"), "admin"),
            admin_delay_seconds=_int(
                data.get("admin_delay_seconds", DEFAULT_ADMIN_DELAY_SECONDS), "admin_delay_seconds", 0, UINT48_MAX
            ),
            max_report_seconds=_int(
                data.get("max_report_seconds", DEFAULT_MAX_REPORT_SECONDS), "max_report_seconds", 1, UINT32_MAX
            ),
            meters=tuple(MeterSpec.from_dict(m, i) for i, m in enumerate(meters)),
            meter_min_balance_wei=_int(data.get("meter_min_balance_wei", 0), "meter_min_balance_wei", 0),
            meter_fund_wei=_int(data.get("meter_fund_wei", 0), "meter_fund_wei", 0),
            expected_chain_id=None if chain_id in (None, "") else _int(chain_id, "expected_chain_id", 1),
        )


@dataclass
class Result:
    changed: bool = False
    actions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    record: dict[str, Any] | None = None


def read_record(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        for key in ("token", "market"):
            _address(record[key]["address"], f"{path}: {key}.address")
        int(record["chainId"])
    except (ValueError, KeyError, TypeError, DeployError) as exc:
        raise DeployError(
            f"deployment record {path} is unreadable ({exc}); expected the JSON this tool writes"
        ) from exc
    return record


def write_record(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.chmod(tmp, 0o644)  # addresses and ABI are public; later plays and the stats app read them
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Signer:
    """Sends one key's transactions (signed locally), records what changed, and sends nothing in check mode."""

    key_name = "private key"

    def __init__(
        self,
        w3: Web3,
        private_key: str,
        record_path: Path,
        build_dir: Path = BUILD_DIR,
        check_mode: bool = False,
        receipt_timeout: float = 180,
    ) -> None:
        try:
            self.account: LocalAccount = Account.from_key(private_key)
        except (ValueError, TypeError) as exc:
            # Never echo the key: say only what shape was expected.
            raise DeployError(f"{self.key_name}: expected 32 bytes as 64 hex digits (0x optional)") from exc
        self.w3 = w3
        self.record_path = record_path
        self.check_mode = check_mode
        self.receipt_timeout = receipt_timeout
        self.token_artifact = Artifact.load("EnergyToken", build_dir)
        self.market_artifact = Artifact.load("EnergyMarket", build_dir)
        self.result = Result()
        self._in_flight: list[tuple[Any, str]] = []  # (hash, what) sent with wait=False, not yet settled
        self._next_nonce: int | None = None

    # ------------------------------------------------------------ transactions

    def _send(self, tx: dict[str, Any], what: str, wait: bool = True) -> dict[str, Any] | None:
        """Sign and send one transaction; wait=True returns its receipt (raising if it reverted), wait=False leaves it
        in flight until `_settle`, so that independent transactions share a block instead of waiting one each."""
        tx = {**tx, "from": self.account.address, "chainId": self.chain_id}
        pending = self.w3.eth.get_transaction_count(self.account.address, "pending")
        # Transactions in flight have taken their nonces already (a node may not count them as pending yet).
        tx["nonce"] = max(pending, self._next_nonce or 0)
        if "gas" not in tx:
            tx["gas"] = self.w3.eth.estimate_gas(tx)
        if "maxFeePerGas" not in tx and "gasPrice" not in tx:
            base_fee = self.w3.eth.get_block("latest").get("baseFeePerGas")
            if base_fee is None:
                tx["gasPrice"] = self.w3.eth.gas_price
            else:
                tip = self.w3.eth.max_priority_fee
                tx["maxPriorityFeePerGas"] = tip
                tx["maxFeePerGas"] = 2 * base_fee + tip
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        self._next_nonce = tx["nonce"] + 1
        self._in_flight.append((tx_hash, what))
        if not wait:
            return None
        return self._settle()[-1]

    def _settle(self) -> list[dict[str, Any]]:
        """Wait for every transaction in flight, in the order sent; the first that reverted is raised (after all were
        waited for, so that the error names the first failure and nothing is left unaccounted)."""
        in_flight, self._in_flight = self._in_flight, []
        receipts = [
            (dict(self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout)), tx_hash, what)
            for tx_hash, what in in_flight
        ]
        for receipt, tx_hash, what in receipts:
            if receipt["status"] != 1:
                raise DeployError(
                    f"{what}: transaction {tx_hash.to_0x_hex()} reverted (block {receipt['blockNumber']})"
                )
        return [receipt for receipt, _, _ in receipts]

    def _call(self, fn: Any, what: str, wait: bool = True) -> dict[str, Any] | None:
        return self._send(fn.build_transaction({"from": self.account.address}), what, wait=wait)

    def _act(self, description: str, action: Callable[[], Any]) -> Any:
        """Record a change; perform it unless in check mode."""
        self.result.changed = True
        if self.check_mode:
            self.result.actions.append(f"would {description}")
            return None
        value = action()
        self.result.actions.append(description)
        return value

    def _contracts_from_record(self, record: dict[str, Any]) -> tuple[Contract, Contract]:
        if int(record["chainId"]) != self.chain_id:
            raise DeployError(
                f"deployment record {self.record_path} is for chain {record['chainId']}, the node is on chain "
                f"{self.chain_id}; refusing to mix them (move the record aside only if the old chain is gone)"
            )
        contracts = []
        for key, artifact in (("token", self.token_artifact), ("market", self.market_artifact)):
            address = Web3.to_checksum_address(record[key]["address"])
            code = bytes(self.w3.eth.get_code(address))
            if not code:
                raise DeployError(
                    f"{artifact.name} is recorded at {address} in {self.record_path}, but chain {self.chain_id} has "
                    "no code there (chain reset, or the wrong RPC node?). Not redeploying silently: move the "
                    "record aside to deploy afresh."
                )
            if not artifact.matches_code(code):
                raise DeployError(
                    f"the code at {address} (recorded {artifact.name}) differs from contracts/build/"
                    f"{artifact.name}.json; the recorded deployment is from other sources. Not redeploying "
                    "silently: move the record aside to deploy afresh."
                )
            contracts.append(self.w3.eth.contract(address=address, abi=artifact.abi))
        token, market = contracts
        if market.functions.token().call() != token.address:
            raise DeployError(
                f"market {market.address} is bound to token {market.functions.token().call()}, "
                f"not to the recorded token {token.address}"
            )
        return token, market


class Deployer(Signer):
    """Deploys once and converges the chain to a DeploySpec with the deployer (registrar) key."""

    key_name = "deployer private key"

    def _deploy(self, spec: DeploySpec) -> tuple[Contract, Contract] | None:
        def deploy() -> tuple[Contract, Contract]:
            # The token names its minter at construction (nobody else could grant it: the deployer is no admin),
            # so it is given the market's address-to-be: the deployer's next nonce after the token's.
            nonce = self.w3.eth.get_transaction_count(self.account.address, "pending")
            market_address = get_create_address(self.account.address, nonce + 1)
            token_factory = self.w3.eth.contract(abi=self.token_artifact.abi, bytecode=self.token_artifact.bytecode)
            receipt = self._call(
                token_factory.constructor(
                    spec.token_name, spec.token_symbol, spec.admin, spec.admin_delay_seconds, market_address
                ),
                "deploy token",
            )
            token = self.w3.eth.contract(address=receipt["contractAddress"], abi=self.token_artifact.abi)
            token_block = receipt["blockNumber"]
            market_factory = self.w3.eth.contract(abi=self.market_artifact.abi, bytecode=self.market_artifact.bytecode)
            receipt = self._call(
                market_factory.constructor(
                    token.address,
                    spec.admin,
                    spec.admin_delay_seconds,
                    self.account.address,
                    spec.tariff,
                    spec.tolerance_percent,
                    spec.max_report_seconds,
                ),
                "deploy market",
            )
            if receipt["contractAddress"] != market_address:
                raise DeployError(
                    f"the market landed at {receipt['contractAddress']}, not at {market_address} that the token "
                    f"{token.address} names as its minter: another transaction used the deployer key in between. "
                    "Nothing was recorded; run again to deploy afresh."
                )
            market = self.w3.eth.contract(address=receipt["contractAddress"], abi=self.market_artifact.abi)
            record = {
                "chainId": self.chain_id,
                "deployer": self.account.address,
                "admin": spec.admin,
                "token": {"address": token.address, "abi": self.token_artifact.abi, "block": token_block},
                "market": {"address": market.address, "abi": self.market_artifact.abi, "block": receipt["blockNumber"]},
            }
            write_record(self.record_path, record)
            return token, market

        return self._act(
            f"deploy {self.token_artifact.name} ({spec.token_name}/{spec.token_symbol}) and "
            f"{self.market_artifact.name} (admin {spec.admin}, tariff {spec.tariff}, tolerance "
            f"{spec.tolerance_percent}%, report window {spec.max_report_seconds} s)",
            deploy,
        )

    def _check_settings(self, spec: DeploySpec, token: Contract, market: Contract) -> None:
        name, symbol = token.functions.name().call(), token.functions.symbol().call()
        if (name, symbol) != (spec.token_name, spec.token_symbol):
            raise DeployError(
                f"token {token.address} is {name!r}/{symbol!r}, the inventory asks for "
                f"{spec.token_name!r}/{spec.token_symbol!r}; name and symbol are fixed at deployment"
            )
        # Deployment parameters: afterwards the admin owns them (TARIFF_ROLE), the deployer cannot change them.
        for what, on_chain, wanted in (
            ("tariff", market.functions.tariff().call(), spec.tariff),
            ("tolerance_percent", market.functions.tolerancePercent().call(), spec.tolerance_percent),
        ):
            if on_chain != wanted:
                self.result.warnings.append(
                    f"the market's {what} is {on_chain}, the inventory says {wanted}: only the admin changes it "
                    "(playbooks/contracts_admin.yml); left as it is"
                )

    def _check_roles(self, spec: DeploySpec, token: Contract, market: Contract) -> None:
        """The admin, the market's minting and the deployer's registrar role are what the inventory says; the
        deployer renounces any other role it was given."""
        deployer = self.account.address
        for contract in (token, market):
            admin = contract.functions.defaultAdmin().call()
            if admin == spec.admin:
                continue
            pending, schedule = contract.functions.pendingDefaultAdmin().call()
            if pending == spec.admin:
                self.result.warnings.append(
                    f"{contract.address}: admin handover to {spec.admin} is pending (acceptable from unix time "
                    f"{schedule}); the admin is still {admin} until {spec.admin} calls acceptDefaultAdminTransfer"
                )
                continue
            raise DeployError(
                f"the admin of {contract.address} is {admin}, the inventory says {spec.admin} "
                "(contracts_admin_address); a handover is two-step: beginDefaultAdminTransfer by the current admin, "
                "acceptDefaultAdminTransfer by the new one after the delay"
            )
        minter = token.functions.MINTER_ROLE().call()
        if not token.functions.hasRole(minter, market.address).call():
            raise DeployError(
                f"market {market.address} does not hold MINTER_ROLE on token {token.address}: reports would revert. "
                "Only the admin can grant it (grantRole(MINTER_ROLE, market))."
            )
        registrar = market.functions.REGISTRAR_ROLE().call()
        if not market.functions.hasRole(registrar, deployer).call():
            raise DeployError(
                f"the deployer key ({deployer}) does not hold REGISTRAR_ROLE on market {market.address}: it was "
                "rotated out (playbooks/rotate_deployer.yml). Set contracts_deployer_private_key to the current "
                "registrar's key."
            )
        surplus = [
            (contract, role_name)
            for contract, role_name in ((token, "MINTER_ROLE"), (market, "TARIFF_ROLE"), (market, "PAUSER_ROLE"))
            if contract.functions.hasRole(getattr(contract.functions, role_name)().call(), deployer).call()
        ]
        for contract, role_name in surplus:
            role = getattr(contract.functions, role_name)().call()
            self._act(
                f"renounce {role_name} of the deployer {deployer} on {contract.address}",
                lambda contract=contract, role=role, role_name=role_name: self._call(
                    contract.functions.renounceRole(role, deployer), f"renounce {role_name}"
                ),
            )

    def _converge_meter(self, meter: MeterSpec, market: Contract | None) -> None:
        on_chain = market.functions.getMeter(meter.address).call() if market is not None else None
        registered = on_chain is not None and on_chain[3] != 0
        if registered:
            owner, capacity, active = on_chain[0], on_chain[1], on_chain[2]
            if capacity != meter.capacity_watts:
                raise DeployError(
                    f"meter {meter.address} is registered with {capacity} W; the inventory says "
                    f"{meter.capacity_watts} W. The capacity is fixed at registration: deactivate it "
                    "(active: false) and give the Pi a new meter key."
                )
            if owner != meter.owner and active and meter.active:
                self._act(
                    f"move meter {meter.address} from owner {owner} to {meter.owner}",
                    lambda: self._call(
                        market.functions.transferMeter(meter.address, meter.owner), "transferMeter", wait=False
                    ),
                )
            if active and not meter.active:
                self._act(
                    f"deactivate meter {meter.address}",
                    lambda: self._call(market.functions.deactivateMeter(meter.address), "deactivateMeter", wait=False),
                )
            elif not active and meter.active:
                raise DeployError(
                    f"meter {meter.address} was deactivated on chain and cannot be reactivated; give the Pi a new "
                    "meter key, or set active: false for it in the inventory"
                )
        elif meter.active:
            self._act(
                f"register meter {meter.address} (owner {meter.owner}, {meter.capacity_watts} W)",
                lambda: self._call(
                    market.functions.registerMeter(meter.address, meter.owner, meter.capacity_watts),
                    "registerMeter",
                    wait=False,
                ),
            )

    def _fund_meter(self, meter: MeterSpec, spec: DeploySpec) -> None:
        if not meter.active or spec.meter_fund_wei == 0:
            return
        balance = self.w3.eth.get_balance(meter.address)
        if balance >= spec.meter_min_balance_wei and balance > 0:
            return
        amount = spec.meter_fund_wei - balance
        if amount <= 0:
            return
        self._act(
            f"fund meter {meter.address} with {amount} wei (balance {balance} -> {spec.meter_fund_wei})",
            lambda: self._send(
                {"to": meter.address, "value": amount, "gas": 21000}, f"fund {meter.address}", wait=False
            ),
        )

    # ------------------------------------------------------------ entry point

    def run(self, spec: DeploySpec) -> Result:
        self.chain_id = self.w3.eth.chain_id
        if spec.expected_chain_id is not None and spec.expected_chain_id != self.chain_id:
            raise DeployError(f"the RPC node is on chain {self.chain_id}, expected chain {spec.expected_chain_id}")
        if spec.admin == self.account.address:
            raise DeployError(
                f"the admin ({spec.admin}) is the deployer's own address: the admin must be another key (held offline, "
                "or a multisig), so that a leaked deployer key cannot mint, pause or change the tariff"
            )
        record = read_record(self.record_path)
        contracts = self._contracts_from_record(record) if record is not None else self._deploy(spec)
        if contracts is not None:
            token, market = contracts
            self._check_settings(spec, token, market)
            self._check_roles(spec, token, market)
        else:
            market = None  # check mode before the first deployment: every meter would be registered
        # The meters' registrations, moves and fundings are independent of each other: sent one after the other
        # without waiting, they share a block or two (the lab's 3 Pis: 1 to 2 blocks instead of 6).
        try:
            for meter in spec.meters:
                self._converge_meter(meter, market)
                self._fund_meter(meter, spec)
        except Exception:
            with contextlib.suppress(Exception):  # what was sent before the error is mined: wait for it, then raise
                self._settle()
            raise
        self._settle()
        self.result.record = read_record(self.record_path)
        return self.result
