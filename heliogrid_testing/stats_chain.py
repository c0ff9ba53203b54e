"""The real EnergyToken/EnergyMarket artifacts deployed on an in-process EVM (eth-tester), and a day of trading on
them, for the stats app's tests (files/stats_app/tests/conftest.py has the fixtures)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from web3 import Web3
from web3.utils import get_create_address

REPO = Path(__file__).resolve().parents[1]


BUILD = Path(os.environ.get("HELIOGRID_CONTRACTS_BUILD", REPO / "contracts" / "build"))


RESULTS = Path(os.environ.get("HELIOGRID_TEST_RESULTS", REPO / "test-results"))


TARIFF = 10**18  # one token per credited kWh


TOLERANCE = 10  # percent


ADMIN_DELAY = 2 * 24 * 3600  # s a new admin waits before accepting (EnergyToken/EnergyMarket constructors)


REPORT_WINDOW = 24 * 3600  # s: the most elapsed time one report may count


def artifact(name: str) -> dict:
    path = BUILD / f"{name}.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: build the contracts first (contracts/)")
    return json.loads(path.read_text())


@dataclass
class Market:
    """Drives the deployed market the way the deploy role, the Pi agents and buyers do."""

    w3: Web3
    token: object
    market: object
    admin: str
    record: dict

    @property
    def tester(self):  # the eth-tester instance, for time travel and snapshots
        return self.w3.provider.ethereum_tester

    def revert(self, snapshot: int) -> None:
        """eth-tester's revert, plus the number->hash index py-evm leaves pointing into the abandoned branch
        when that branch was shorter than the one reverted to (a real node rewrites it on a reorg)."""
        self.tester.revert_to_snapshot(snapshot)
        chaindb = self.tester.backend.chain.chaindb
        header = chaindb.get_canonical_head()
        while header.block_number > 0:
            chaindb._add_block_number_to_hash_lookup(chaindb.db, header)
            header = chaindb.get_block_header_by_hash(header.parent_hash)

    def now(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]

    def travel(self, seconds: int) -> None:
        # from the pending block: after a snapshot revert eth-tester's clock stays ahead of the latest block
        self.tester.time_travel(self.w3.eth.get_block("pending")["timestamp"] + seconds)
        self.tester.mine_blocks(1)

    def _send(self, call, sender: str) -> dict:
        receipt = self.w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
        assert receipt["status"] == 1
        return receipt

    def register(self, meter: str, owner: str, capacity_watts: int) -> None:
        self._send(self.market.functions.registerMeter(meter, owner, capacity_watts), self.admin)

    def deactivate(self, meter: str) -> None:
        self._send(self.market.functions.deactivateMeter(meter), self.admin)

    def ask(self, owner: str, price: int) -> None:
        self._send(self.market.functions.setAskPrice(price), owner)

    def report(self, meter: str, total_wh: int) -> dict:
        return self._send(self.market.functions.reportProduction(total_wh), meter)

    def buy(self, buyer: str, offer_id: int, kwh: int) -> dict:
        offer = self.market.functions.getOffer(offer_id).call()
        self._send(self.token.functions.approve(self.market.address, kwh * offer[3]), buyer)
        return self._send(self.market.functions.buy(offer_id, kwh), buyer)

    def cancel(self, seller: str, offer_id: int) -> None:
        self._send(self.market.functions.cancelOffer(offer_id), seller)

    def pay(self, sender: str, to: str, amount: int) -> None:
        self._send(self.token.functions.transfer(to, amount), sender)

    def offer(self, offer_id: int) -> tuple:
        """(seller, meter, remainingKWh, pricePerKWh, open), as getOffer answers."""
        return tuple(self.market.functions.getOffer(offer_id).call())

    def next_offer_id(self) -> int:
        return self.market.functions.nextOfferId().call()

    def meter_state(self, meter: str) -> tuple:
        return self.market.functions.getMeter(meter).call()


def deploy(w3: Web3) -> Market:
    # One account is admin and registrar here (the roles keep them apart); the token names the market's
    # address-to-be (the next nonce) as its minter.
    admin = w3.eth.accounts[0]
    token_art, market_art = artifact("EnergyToken"), artifact("EnergyMarket")
    market_address = get_create_address(admin, w3.eth.get_transaction_count(admin) + 1)
    token_factory = w3.eth.contract(abi=token_art["abi"], bytecode=token_art["bytecode"])
    tx = token_factory.constructor("HelioGrid Energy", "HGE", admin, ADMIN_DELAY, market_address).transact(
        {"from": admin}
    )
    token = w3.eth.contract(address=w3.eth.wait_for_transaction_receipt(tx)["contractAddress"], abi=token_art["abi"])
    market_factory = w3.eth.contract(abi=market_art["abi"], bytecode=market_art["bytecode"])
    tx = market_factory.constructor(
        token.address, admin, ADMIN_DELAY, admin, TARIFF, TOLERANCE, REPORT_WINDOW
    ).transact({"from": admin})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["contractAddress"] == market_address
    market = w3.eth.contract(address=receipt["contractAddress"], abi=market_art["abi"])
    record = {
        "chainId": w3.eth.chain_id,
        "token": {"address": token.address, "abi": token_art["abi"]},
        "market": {"address": market.address, "abi": market_art["abi"], "block": receipt["blockNumber"]},
    }
    return Market(w3, token, market, admin, record)


def trade(market: Market) -> dict:
    """Two producers with three meters, reports over two hours, two purchases: a small day of trading."""
    a = market.w3.eth.accounts
    owners, meters, buyer = a[1:3], a[3:6], a[6]
    market.register(meters[0], owners[0], 5000)
    market.register(meters[1], owners[0], 3000)
    market.register(meters[2], owners[1], 4000)
    market.ask(owners[0], 2 * 10**17)
    market.ask(owners[1], 3 * 10**17)
    market.travel(3600)
    market.report(meters[0], 4_200)
    market.report(meters[1], 2_500)
    market.report(meters[2], 3_999)
    market.travel(3600)
    market.report(meters[0], 9_100)
    market.report(meters[2], 7_000)
    # owners[1] spends minted tokens on owners[0]'s first offer; owners[0] buys back from owners[1]
    purchases = [_bought(market, owners[1], 1, 3), _bought(market, owners[0], 3, 2)]
    return {"owners": owners, "meters": meters, "buyer": buyer, "purchases": purchases}


@dataclass(frozen=True)
class Purchase:
    """One buy() as the test driver made it: who, which offer, how much, in which block."""

    buyer: str
    offer_id: int
    kwh: int
    block: int


def _bought(market: Market, buyer: str, offer_id: int, kwh: int) -> Purchase:
    return Purchase(buyer, offer_id, kwh, market.buy(buyer, offer_id, kwh)["blockNumber"])


def trade_market(market: Market, trading: dict) -> dict:
    """After `trade`: the Pis buy with their meter keys over two days, one price change, a cancel.

    Leaves open offers at three prices, two of them at one price, and partly filled ones."""
    owners, meters = trading["owners"], trading["meters"]
    funded = {meters[0]: 2 * 10**18, meters[1]: 10**18, meters[2]: 2 * 10**18}
    for meter, owner in zip(meters, (owners[0], owners[0], owners[1]), strict=True):
        market.pay(owner, meter, funded[meter])
    market.ask(owners[1], 5 * 10**17)
    market.travel(3600)
    market.report(meters[1], 4_100)  # offer 6: 2 kWh at 0.2, from owners[0]
    market.report(meters[2], 9_000)  # offer 7: 2 kWh at 0.5, from owners[1]
    market.cancel(owners[0], 2)  # 2 kWh at 0.2 withdrawn unsold
    purchases = [
        _bought(market, meters[0], 5, 2),  # partial: 2 of 4 kWh at 0.3
        _bought(market, meters[2], 1, 1),  # the rest of offer 1 at 0.2: closes it
        _bought(market, meters[2], 4, 3),  # partial: 3 of 5 kWh at 0.2
        _bought(market, meters[1], 7, 1),  # partial: 1 of 2 kWh at 0.5
    ]
    market.travel(86_400)  # the next UTC day
    purchases.append(_bought(market, meters[0], 5, 2))  # the rest of offer 5: closes it
    return {**trading, "purchases": trading["purchases"] + purchases, "funded": funded}


@dataclass
class SharedChain:
    market: Market
    deployed: int  # eth-tester snapshot right after the deployment
    traded: int  # snapshot after `trade`
    trading: dict
    marketed: int  # snapshot after `trade_market`
    market_trading: dict
