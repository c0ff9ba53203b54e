"""Upgrade the market by redeployment and migration: a new EnergyMarket bound to the same token, the meters imported
with the totals they reached, minting handed over by the admin. Why not a proxy: contracts/README.md, "Upgrades".

The steps, each by the key that may take it:
1. admin: pause the old market (`playbooks/contracts_admin.yml -e contracts_admin_paused=true`): totals freeze.
2. deployer (`Migrator.run`, this module): deploy the new market from the current artifacts, record it (the old
   address stays in the record as `migratedFrom`), import every active meter with its owner, capacity and total.
   A re-run imports what is missing and deploys nothing.
3. admin: make the new market the only minter (`Admin` with `minter_follows_record`).
4. site.yml: the agents and the stats app get the new record and report to the new market.

The token and its balances stay; open offers on the old market lapse (their sellers can cancel them there).
"""

from __future__ import annotations

from web3 import Web3
from web3.contract import Contract

from heliogrid_contracts.deploy import DeployError, DeploySpec, Result, Signer, read_record, write_record


class Migrator(Signer):
    """Moves the recorded deployment to a new market, with the deployer (registrar) key."""

    key_name = "deployer private key"

    def _token(self, record: dict) -> Contract:
        address = Web3.to_checksum_address(record["token"]["address"])
        if not self.token_artifact.matches_code(bytes(self.w3.eth.get_code(address))):
            raise DeployError(
                f"the code at {address} is not contracts/build/EnergyToken.json: a market migration keeps the token, "
                "so the token's sources must not change"
            )
        return self.w3.eth.contract(address=address, abi=self.token_artifact.abi)

    def _old_market(self, address: str, token: Contract) -> Contract:
        # The old market is older code: only the parts of the interface that every version keeps are used.
        if not bytes(self.w3.eth.get_code(address)):
            raise DeployError(f"no code at the old market {address}")
        market = self.w3.eth.contract(address=address, abi=self.market_artifact.abi)
        if market.functions.token().call() != token.address:
            raise DeployError(f"the old market {address} is not bound to token {token.address}")
        return market

    def _deploy_market(self, spec: DeploySpec, token: Contract, old: Contract, record: dict) -> None:
        def deploy() -> None:
            tariff, tolerance = old.functions.tariff().call(), old.functions.tolerancePercent().call()
            factory = self.w3.eth.contract(abi=self.market_artifact.abi, bytecode=self.market_artifact.bytecode)
            receipt = self._call(
                factory.constructor(
                    token.address,
                    spec.admin,
                    spec.admin_delay_seconds,
                    self.account.address,
                    tariff,
                    tolerance,
                    spec.max_report_seconds,
                ),
                "deploy market",
            )
            write_record(
                self.record_path,
                {
                    **record,
                    "market": {
                        "address": receipt["contractAddress"],
                        "abi": self.market_artifact.abi,
                        "block": receipt["blockNumber"],
                    },
                    "migratedFrom": {"address": old.address, "block": record["market"].get("block", 0)},
                },
            )

        self._act(
            f"deploy a new {self.market_artifact.name} for token {token.address}, replacing {old.address}", deploy
        )

    def _import_meters(self, old: Contract, new: Contract, from_block: int) -> None:
        registered = old.events.MeterRegistered().get_logs(from_block=from_block)
        for meter in dict.fromkeys(e["args"]["meter"] for e in registered):
            owner, capacity, active, _, _, total_wh, _ = old.functions.getMeter(meter).call()
            if not active or new.functions.getMeter(meter).call()[3] != 0:
                continue
            self._act(
                f"import meter {meter} (owner {owner}, {capacity} W, {total_wh} Wh so far)",
                lambda meter=meter, owner=owner, capacity=capacity, total_wh=total_wh: self._call(
                    new.functions.importMeter(meter, owner, capacity, total_wh), "importMeter"
                ),
            )

    def run(self, spec: DeploySpec) -> Result:
        self.chain_id = self.w3.eth.chain_id
        record = read_record(self.record_path)
        if record is None or int(record["chainId"]) != self.chain_id:
            raise DeployError(f"no deployment record for chain {self.chain_id} at {self.record_path}")
        token = self._token(record)
        recorded = self._old_market(Web3.to_checksum_address(record["market"]["address"]), token)
        if "migratedFrom" not in record or recorded.functions.paused().call():
            if not recorded.functions.paused().call():
                raise DeployError(
                    f"the market {recorded.address} is not paused: the admin pauses it first, so that no meter "
                    "reports to it while its totals are copied"
                )
            self._deploy_market(spec, token, recorded, record)
            if self.check_mode:
                return self.result
            record = read_record(self.record_path)
        old = self._old_market(Web3.to_checksum_address(record["migratedFrom"]["address"]), token)
        new = self.w3.eth.contract(address=record["market"]["address"], abi=self.market_artifact.abi)
        self._import_meters(old, new, int(record["migratedFrom"]["block"]))
        self.result.record = record
        return self.result
