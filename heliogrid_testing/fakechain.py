"""An in-memory chain implementing the agent's Chain interface and EnergyMarket's reporting rules.

It lets the unit tests break things a real node cannot be told to: go down between two calls, forget its
transaction pool, mine only when asked. It decodes the agent's real signed legacy transactions.

The agent reads the meter, the pause flag and the receipts again only at a new block (reporter.py), as a real
chain changes them only in one: after changing state through the test controls (register, is_paused, meters,
offers...) advance the clock or call ``mine()``, as the admin's transaction would.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import rlp
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from heliogrid_agent.chain import MeterInfo, NodeUnavailable, Offer, Receipt, SendRejected

MARKET = to_checksum_address("0x" + "aa" * 20)
TOKEN = to_checksum_address("0x" + "bb" * 20)
TARIFF = 10**18


@dataclass
class Tx:
    sender: str
    nonce: int
    to: str
    data: bytes
    raw: bytes
    tx_hash: str


class FakeChain:
    market_address = MARKET

    def __init__(
        self,
        clock: Any,
        chain_id: int = 1337,
        tolerance_percent: int = 10,
        automine: bool = True,
        max_report_seconds: int | None = 24 * 3600,
        period: int = 1,
    ) -> None:
        self.clock = clock
        self._chain_id = chain_id
        self.tolerance = tolerance_percent
        self.report_window = max_report_seconds  # None: a market from before the report window
        self.automine = automine
        self.period = period  # seconds between sealed blocks (Clique's period; the lab's is 5)
        self.up = True
        self.blocks = [int(clock.time())]
        self.nonces: dict[str, int] = {}
        self.pool: dict[str, Tx] = {}
        self.receipts: dict[str, Receipt] = {}
        self.meters: dict[str, MeterInfo] = {}
        self.balances: dict[str, int] = {}
        self.allowances: dict[tuple[str, str], int] = {}
        self.offers: dict[int, Offer] = {}
        self.ask: dict[str, int] = {}
        self.sent: list[bytes] = []  # every raw transaction ever accepted, resends included
        self.mined: list[Tx] = []
        self.credit_events: list[int] = []
        self.is_paused = False
        self.ether: dict[str, int] = {}  # wei; accounts not listed hold plenty

    # -- test controls -----------------------------------------------------------------------------------
    def register(self, meter: str, owner: str, capacity_watts: int) -> None:
        self.meters[meter.lower()] = MeterInfo(owner, capacity_watts, True, self.blocks[-1], 0, 0, 0)

    def meter(self, address: str) -> MeterInfo:
        return self.meters[address.lower()]

    def forget_pool(self) -> None:
        self.pool.clear()

    def _check(self) -> None:
        if not self.up:
            raise NodeUnavailable("connection refused")
        # Clique with a period seals empty blocks too: the head keeps up with the clock (one block stands for those
        # sealed since the last call; its timestamp is on the period's grid, as a sealer's are).
        now, last = int(self.clock.time()), self.blocks[-1]
        if now >= last + self.period:
            self.blocks.append(last + (now - last) // self.period * self.period)

    # -- the Chain interface -----------------------------------------------------------------------------
    def chain_id(self) -> int:
        self._check()
        return self._chain_id

    def block_number(self) -> int:
        self._check()
        return len(self.blocks) - 1

    def latest_timestamp(self) -> int:
        self._check()
        return self.blocks[-1]

    def syncing(self) -> bool:
        self._check()
        return False

    def peer_count(self) -> int | None:
        self._check()
        return 2

    def nonce(self, address: str, block: str) -> int:
        self._check()
        n = self.nonces.get(address.lower(), 0)
        if block == "pending":
            while any(t.sender == address.lower() and t.nonce == n for t in self.pool.values()):
                n += 1
        return n

    def gas_price(self) -> int:
        self._check()
        return 10**9

    def send_raw(self, raw: bytes) -> str:
        self._check()
        tx = self.decode(raw)
        if tx.tx_hash in self.receipts:
            raise SendRejected("nonce too low")
        if tx.tx_hash in self.pool:
            raise SendRejected("already known")
        if tx.nonce < self.nonces.get(tx.sender, 0):
            raise SendRejected("nonce too low")
        self.pool[tx.tx_hash] = tx
        self.sent.append(raw)
        if self.automine:
            self.mine()
        return tx.tx_hash

    def receipt(self, tx_hash: str) -> Receipt | None:
        self._check()
        return self.receipts.get(tx_hash)

    def get_meter(self, address: str) -> MeterInfo:
        self._check()
        return self.meters.get(address.lower(), MeterInfo("0x" + "00" * 20, 0, False, 0, 0, 0, 0))

    def tolerance_percent(self) -> int:
        self._check()
        return self.tolerance

    def max_report_seconds(self) -> int | None:
        self._check()
        return self.report_window

    def paused(self) -> bool:
        self._check()
        return self.is_paused

    def ether_balance(self, address: str) -> int:
        self._check()
        return self.ether.get(address.lower(), 10**21)

    def token_balance(self, address: str) -> int:
        self._check()
        return self.balances.get(address.lower(), 0)

    def allowance(self, owner: str, spender: str) -> int:
        self._check()
        return self.allowances.get((owner.lower(), spender.lower()), 0)

    def get_offer(self, offer_id: int) -> Offer:
        self._check()
        return self.offers.get(offer_id, Offer(offer_id, "0x" + "00" * 20, "0x" + "00" * 20, 0, 0, False))

    def next_offer_id(self) -> int:
        self._check()
        return len(self.offers) + 1

    def ask_price(self, owner: str) -> int:
        self._check()
        return self.ask.get(owner.lower(), 0)

    def ask_call(self, price_per_kwh: int) -> dict[str, Any]:
        return {"to": MARKET, "data": b"S" + price_per_kwh.to_bytes(32, "big")}

    def report_call(self, total_wh: int) -> dict[str, Any]:
        return {"to": MARKET, "data": b"R" + total_wh.to_bytes(32, "big")}

    def approve_call(self, spender: str, amount: int) -> dict[str, Any]:
        return {"to": TOKEN, "data": b"A" + bytes.fromhex(spender[2:]) + amount.to_bytes(32, "big")}

    def buy_call(self, offer_id: int, kwh: int) -> dict[str, Any]:
        return {"to": MARKET, "data": b"B" + offer_id.to_bytes(32, "big") + kwh.to_bytes(32, "big")}

    # -- mining ------------------------------------------------------------------------------------------
    @staticmethod
    def decode(raw: bytes) -> Tx:
        nonce, _gas_price, _gas, to, _value, data, *_sig = rlp.decode(raw)
        sender = Account.recover_transaction(raw).lower()
        return Tx(sender, int.from_bytes(nonce, "big"), "0x" + to.hex(), data, raw, "0x" + keccak(raw).hex())

    def mine(self) -> None:
        self.blocks.append(max(int(self.clock.time()), self.blocks[-1] + 1))
        progressed = True
        while progressed:
            progressed = False
            for tx in sorted(self.pool.values(), key=lambda t: t.nonce):
                if tx.nonce == self.nonces.get(tx.sender, 0):
                    del self.pool[tx.tx_hash]
                    self.nonces[tx.sender] = tx.nonce + 1
                    ok = self._execute(tx)
                    self.receipts[tx.tx_hash] = Receipt(1 if ok else 0, len(self.blocks) - 1)
                    self.mined.append(tx)
                    progressed = True
                    break

    def _execute(self, tx: Tx) -> bool:
        kind, body = tx.data[:1], tx.data[1:]
        if kind == b"S":  # setAskPrice, the one market call without whenNotPaused
            self.ask[tx.sender] = int.from_bytes(body, "big")
            return True
        if self.is_paused and tx.to.lower() == MARKET.lower():  # whenNotPaused
            return False
        if kind == b"R":
            return self._report(tx.sender, int.from_bytes(body, "big"))
        if kind == b"A":
            self.allowances[(tx.sender, "0x" + body[:20].hex())] = int.from_bytes(body[20:], "big")
            return True
        if kind == b"B":
            return self._buy(tx.sender, int.from_bytes(body[:32], "big"), int.from_bytes(body[32:], "big"))
        return False

    def _report(self, sender: str, total: int) -> bool:
        m = self.meters.get(sender)
        if m is None or not m.active or total <= m.total_wh:
            return False
        since = m.last_report_at or m.registered_at
        elapsed = self.blocks[-1] - since
        if self.report_window is not None:
            elapsed = min(elapsed, self.report_window)
        max_increase = m.capacity_watts * elapsed * (100 + self.tolerance) // 360_000
        if total - m.total_wh > max_increase:
            return False
        kwh = total // 1000 - m.credited_kwh
        self.meters[sender] = replace(m, total_wh=total, last_report_at=self.blocks[-1], credited_kwh=total // 1000)
        self.credit_events.append(kwh)
        owner = m.owner.lower()
        self.balances[owner] = self.balances.get(owner, 0) + kwh * TARIFF
        price = self.ask.get(owner, 0)
        if kwh and price:
            offer_id = len(self.offers) + 1
            self.offers[offer_id] = Offer(offer_id, m.owner, sender, kwh, price, True)
        return True

    def _buy(self, buyer: str, offer_id: int, kwh: int) -> bool:
        offer = self.offers.get(offer_id)
        if offer is None or not offer.open or kwh == 0 or kwh > offer.remaining_kwh:
            return False
        cost = kwh * offer.price_per_kwh
        if self.allowances.get((buyer, MARKET.lower()), 0) < cost or self.balances.get(buyer, 0) < cost:
            return False
        self.allowances[(buyer, MARKET.lower())] -= cost
        self.balances[buyer] -= cost
        seller = offer.seller.lower()
        self.balances[seller] = self.balances.get(seller, 0) + cost
        self.offers[offer_id] = replace(offer, remaining_kwh=offer.remaining_kwh - kwh)
        return True
