"""What only the contracts' admin may do, signed with the admin key: rotate the registrar, pause, set the tariff.

The admin key is not the deployer's. It is held offline (or is a multisig, which signs the same calls in its own
tool) and is used only for these runs. Idempotent like the deploy: a second run with the same wishes sends nothing,
and check mode sends nothing at all.

The Ansible module `heliogrid_contracts_admin` (roles/contracts/library) wraps `Admin.run`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web3.contract import Contract

from heliogrid_contracts.deploy import (
    MAX_TARIFF,
    MAX_TOLERANCE_PERCENT,
    DeployError,
    Result,
    Signer,
    _address,
    _int,
    read_record,
)


@dataclass(frozen=True)
class AdminSpec:
    """What the admin wants; None leaves a setting as it is."""

    registrar: str | None = None  # the only account left with REGISTRAR_ROLE
    minter_follows_record: bool = False  # the recorded market becomes the token's only minter (after a migration)
    paused: bool | None = None
    tariff: int | None = None
    tolerance_percent: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdminSpec:
        def given(key: str) -> Any:
            value = data.get(key)
            return None if value in (None, "") else value

        paused = given("paused")
        follows = data.get("minter_follows_record") or False
        if not isinstance(follows, bool):
            raise DeployError(f"minter_follows_record: expected true or false, got {follows!r}")
        if paused is not None and not isinstance(paused, bool):
            raise DeployError(f"paused: expected true, false or null, got {paused!r}")
        registrar, tariff, tolerance = given("registrar"), given("tariff"), given("tolerance_percent")
        return cls(
            registrar=None if registrar is None else _address(registrar, "registrar"),
            paused=paused,
            minter_follows_record=follows,
            tariff=None if tariff is None else _int(tariff, "tariff", 0, MAX_TARIFF),
            tolerance_percent=None
            if tolerance is None
            else _int(tolerance, "tolerance_percent", 0, MAX_TOLERANCE_PERCENT),
        )


class Admin(Signer):
    """Converges the admin's settings on the recorded contracts."""

    key_name = "admin private key"

    @staticmethod
    def holders(contract: Contract, role: bytes, from_block: int) -> list[str]:
        """Every account that holds `role` now (AccessControl keeps no list: read the grants)."""
        granted = contract.events.RoleGranted().get_logs(argument_filters={"role": role}, from_block=from_block)
        accounts = dict.fromkeys(e["args"]["account"] for e in granted)
        return [a for a in accounts if contract.functions.hasRole(role, a).call()]

    def _make_only_holder(self, contract: Contract, role_name: str, account: str, from_block: int) -> None:
        role = getattr(contract.functions, role_name)().call()
        if not contract.functions.hasRole(role, account).call():
            self._act(
                f"grant {role_name} on {contract.address} to {account}",
                lambda: self._call(contract.functions.grantRole(role, account), f"grant {role_name}"),
            )
        for old in self.holders(contract, role, from_block):
            if old != account:
                self._act(
                    f"revoke {role_name} on {contract.address} from {old}",
                    lambda old=old: self._call(contract.functions.revokeRole(role, old), f"revoke {role_name}"),
                )

    def _require_admin(self, *contracts: Contract) -> None:
        for contract in contracts:
            admin = contract.functions.defaultAdmin().call()
            if admin != self.account.address:
                raise DeployError(
                    f"the admin key ({self.account.address}) is not the admin of {contract.address}, which is {admin}"
                )

    def _rotate_registrar(self, market: Contract, registrar: str, from_block: int) -> None:
        self._make_only_holder(market, "REGISTRAR_ROLE", registrar, from_block)
        if self.w3.eth.get_balance(registrar) == 0:
            self.result.warnings.append(
                f"the new registrar {registrar} holds no ether: fund it before the next deploy run (it pays for "
                "registrations and tops the meters' gas up)"
            )

    def run(self, spec: AdminSpec) -> Result:
        self.chain_id = self.w3.eth.chain_id
        record = read_record(self.record_path)
        if record is None:
            raise DeployError(f"no deployment record at {self.record_path}: deploy first (playbooks/contracts.yml)")
        token, market = self._contracts_from_record(record)
        self._require_admin(token, market)
        if spec.minter_follows_record:
            self._make_only_holder(token, "MINTER_ROLE", market.address, int(record["token"].get("block", 0)))
        if spec.registrar is not None:
            self._rotate_registrar(market, spec.registrar, int(record["market"].get("block", 0)))
        fns = market.functions
        if spec.tariff is not None and fns.tariff().call() != spec.tariff:
            self._act(f"set tariff -> {spec.tariff}", lambda: self._call(fns.setTariff(spec.tariff), "setTariff"))
        if spec.tolerance_percent is not None and fns.tolerancePercent().call() != spec.tolerance_percent:
            self._act(
                f"set tolerance -> {spec.tolerance_percent}%",
                lambda: self._call(fns.setTolerancePercent(spec.tolerance_percent), "setTolerancePercent"),
            )
        if spec.paused is not None and fns.paused().call() != spec.paused:
            self._act(
                "pause the market" if spec.paused else "unpause the market",
                lambda: self._call(fns.pause() if spec.paused else fns.unpause(), "pause/unpause"),
            )
        self.result.record = record
        return self.result
