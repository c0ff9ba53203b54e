"""Reports the meter's cumulative total on chain, one transaction per whole excess kWh, and survives restarts.

The rules that make it safe to kill at any instant:
- A transaction is signed, then written to the outbox with its nonce and raw bytes (fsync'd), and only then
  broadcast. After a restart the outbox row is broadcast again, byte for byte: never a second transaction
  with a new nonce for the same report.
- At most one report is in flight. A new report carries the whole counter (cumulative), so a report that
  was lost, dropped or reverted is simply followed by one with a larger total: nothing is credited twice
  (the contract credits only increases) and nothing is skipped.
- The nonce of a new transaction is max(the node's pending nonce, 1 + the highest nonce still waiting in
  the outbox): a transaction the node forgot (restart, pool eviction) keeps its nonce.
- After a restart the on-chain total (getMeter(meter).totalWh) is read first; rows whose fate the database
  did not record are resolved from their receipts.

Under a paused or hostile market the meter's gas is what is at stake:
- While the market is paused (``paused()``) nothing is signed or broadcast; the counter keeps growing in the
  store, and the first report after the unpause carries all of it.
- A report that reverts makes the next one wait, twice as long after each revert in a row (capped), and ask
  for half the increase (at least one whole kWh), in case the market applies a stricter rule than the agent
  knows; the count is kept in the store, so a restart does not reset it.
- A transaction the node refuses is broadcast again after ``resend_seconds``, not at every step.

A step asks the node for the head's number, and for the rest only when the chain may have moved. What a read of
``latest`` returns (the meter, ``paused()``, a receipt, the account's nonce, a balance) cannot change without a new
block, so at the block of the previous step the previous answers stand. Everything is read again after a new
block, after the node was unreachable, at the first step after a start, and after the agent signed or settled a
transaction of its own. The reports, resends and purchases follow the same rules as without the cache: a kWh
crossing is reported at once from the meter read at the current block, and a resend waits ``resend_seconds``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from heliogrid_agent.chain import Chain, MeterInfo, NodeUnavailable, Offer, SendRejected
from heliogrid_agent.clock import Clock, SystemClock
from heliogrid_agent.meter import UWH_PER_WH
from heliogrid_agent.store import OutboxRow, Store

log = logging.getLogger("heliogrid_agent.reporter")

BACKOFF_KEY = "report_backoff"
ALREADY_KNOWN = ("already known", "known transaction", "already imported", "alreadyknown")
NONCE_TOO_LOW = ("nonce too low",)
SLOW_OBSERVE_SECONDS = 15.0  # how often a step also reads the node's sync state, peers, the meter's ether, gas price


class BuyError(ValueError):
    """A purchase the agent refuses before signing anything (the message says why)."""


@dataclass(frozen=True)
class Quote:
    """What a purchase costs, checked against the chain and the owner's cap; nothing is signed yet."""

    offer_id: int
    kwh: int
    price_per_kwh: int
    cost: int
    seller: str


@dataclass
class ChainStatus:
    """What the UI and the metrics show about the chain, refreshed at every step."""

    node_up: bool = False
    syncing: bool | None = None
    block: int | None = None
    peers: int | None = None
    meter: MeterInfo | None = None
    problem: str | None = None  # why the agent is not reporting (unregistered, wrong chain, ...)
    balances: dict[str, int] = field(default_factory=dict)
    checked_at: float | None = None
    market_paused: bool | None = None
    ether_wei: int | None = None  # the meter account's ether, which pays the gas of every report
    transactions_left: int | None = None  # how many more transactions that ether pays at today's gas price
    gas_low: bool | None = None
    reverts_in_a_row: int = 0
    next_report_at: float | None = None  # set while reports back off after reverts


class Reporter:
    def __init__(
        self,
        chain: Chain,
        store: Store,
        account: Any,
        *,
        expected_chain_id: int | None = None,
        gas_limit: int = 300_000,
        max_gas_price_wei: int = 100 * 10**9,
        resend_seconds: float = 30.0,
        revert_backoff_seconds: float = 15.0,
        revert_backoff_max_seconds: float = 1800.0,
        low_gas_transactions: int = 50,
        max_buy_price_per_kwh: int = 0,
        clock: Clock | None = None,
        metrics: Any | None = None,
        adopt_total: Callable[[int], None] | None = None,
        on_sale: Callable[[int], None] | None = None,
        checkpoint: Callable[[str], None] | None = None,
    ) -> None:
        self.chain = chain
        self.store = store
        self.account = account
        self.address: str = account.address
        self.expected_chain_id = expected_chain_id
        self.gas_limit = gas_limit
        self.max_gas_price_wei = max_gas_price_wei
        self.resend_seconds = resend_seconds
        self.revert_backoff_seconds = revert_backoff_seconds
        self.revert_backoff_max_seconds = revert_backoff_max_seconds
        self.low_gas_transactions = low_gas_transactions
        self.max_buy_price_per_kwh = max_buy_price_per_kwh  # token base units; 0: buying is off
        self.clock = clock or SystemClock()
        self.metrics = metrics
        self.adopt_total = adopt_total or store.raise_total
        self.on_sale = on_sale
        # Test hook: called between the steps of a report so a test can "crash" the agent there.
        self.checkpoint = checkpoint or (lambda _step: None)
        self.status = ChainStatus()
        backoff = store.get(BACKOFF_KEY) or {}
        self.status.reverts_in_a_row = int(backoff.get("reverts", 0))
        self.status.next_report_at = backoff.get("until")
        self.lock = threading.RLock()
        self._chain_id: int | None = None
        self._reconciled = False
        self._offers: tuple[float, list[Offer]] = (0.0, [])
        self._credited_seen: int | None = None  # kWh credited when last looked, to tell sales apart
        self._slow_due = float("-inf")  # the first step reads everything
        # What the node answered at block self._head (see the module's docstring). chain_view changes whenever that
        # is forgotten, so that the auto-buyer and the balances can tell "nothing moved since I last looked".
        self._head: int | None = None
        self._reads: dict[str, Any] = {}
        self._waiting: dict[int, int] = {}  # outbox row id -> the block at which it had no receipt and kept its nonce
        self.chain_view = 0
        self._balances_view: int | None = None
        self.auto_buyer: Any | None = None  # an autobuy.AutoBuyer sets itself here
        self.ask_price: Any | None = None  # an askprice.AskPrice sets itself here

    # -- the step the agent runs every few seconds ------------------------------------------------------
    def step(self, imported_uwh: int | None = None) -> None:
        """One pass: read the chain, settle the outbox, report, and auto-buy for ``imported_uwh`` (the home's
        cumulative import in micro-Wh, None when unknown)."""
        with self.lock:
            try:
                self._observe()
                if not self._reconciled:
                    self._reconcile()
                # While the market is paused, a broadcast could only revert and burn the meter's gas.
                self._resolve(broadcast=not self.status.market_paused)
                if self.auto_buyer is not None:
                    self.auto_buyer.observe(imported_uwh)
                if self.status.problem is None:
                    if self.ask_price is not None:  # before the report, so that the report's kWh are offered
                        self.ask_price.step()
                    self._maybe_report()
                    if self.auto_buyer is not None:
                        self.auto_buyer.buy()
            except NodeUnavailable as exc:
                if self.status.node_up:
                    log.warning(
                        "node unreachable, measuring on and reporting later: %s", exc, extra={"event": "node_down"}
                    )
                self.status.node_up = False
                self._slow_due = float("-inf")  # read it all again as soon as the node answers
                self.forget_reads()
            finally:
                self._publish()

    def _observe(self) -> None:
        chain = self.chain
        if self._chain_id is None:
            self._chain_id = chain.chain_id()
        block = chain.block_number()
        if not self.status.node_up:
            log.info("node reachable at block %s", block, extra={"event": "node_up", "block": block})
        self.status.node_up = True
        self.status.block = block
        if block != self._head:
            self.forget_reads()
            self._head = block
        meter = self._read("meter", lambda: chain.get_meter(self.address))
        self.status.meter = meter
        self._observe_pause(self._read("paused", chain.paused))
        now = self.clock.time()
        # What only the page and the metrics show is read every SLOW_OBSERVE_SECONDS, not every step: the node's
        # sync state and peers, the meter's ether and the gas price (4 of a step's 7 calls; a Pi's CPU and RPC).
        if now >= self._slow_due:
            self.status.syncing = chain.syncing()
            self.status.peers = chain.peer_count()
            self._observe_gas(chain.ether_balance(self.address), chain.gas_price())
            self._slow_due = now + SLOW_OBSERVE_SECONDS
        self.status.checked_at = now
        self.status.problem = self._problem(meter)

    def _read(self, key: str, fetch: Callable[[], Any]) -> Any:
        """The node's answer at the current block: asked once per block, kept until the chain may have moved."""
        if key not in self._reads:
            value = fetch()
            if self._head is not None:  # forgotten meanwhile (a send, a settle): keep nothing
                self._reads[key] = value
            return value
        return self._reads[key]

    def forget_reads(self) -> None:
        """The chain may have moved (new block, node outage, the agent's own transaction): read it all again."""
        self._head = None
        self._reads = {}
        self._waiting = {}
        self.chain_view += 1

    def _observe_pause(self, paused: bool) -> None:
        was = self.status.market_paused
        self.status.market_paused = paused
        if paused and not was:
            log.warning(
                "the market is paused: nothing is sent until it is unpaused; energy keeps counting",
                extra={"event": "market_paused"},
            )
        elif was and not paused:
            log.info("the market is unpaused: reporting resumes", extra={"event": "market_unpaused"})

    def _observe_gas(self, ether_wei: int, gas_price: int) -> None:
        """How many more transactions the meter's ether pays; low below chain.low_gas_transactions."""
        per_tx = self.gas_limit * max(gas_price, 1)  # what the node wants the balance to cover before it accepts one
        left = ether_wei // per_tx
        low = left < self.low_gas_transactions
        was = self.status.gas_low
        self.status.ether_wei, self.status.transactions_left, self.status.gas_low = ether_wei, left, low
        if low and not was:
            log.warning(
                "the meter's account %s holds %s wei, gas for %s more transaction(s) (warning below %s); "
                "the deployer funds meters with gas",
                self.address,
                ether_wei,
                left,
                self.low_gas_transactions,
                extra={"event": "gas_low", "ether_wei": ether_wei, "transactions_left": left},
            )
        elif was and not low:
            log.info(
                "the meter's account holds %s wei again, gas for %s transactions",
                ether_wei,
                left,
                extra={"event": "gas_ok", "ether_wei": ether_wei, "transactions_left": left},
            )

    def _problem(self, meter: MeterInfo) -> str | None:
        if self.expected_chain_id is not None and self._chain_id != self.expected_chain_id:
            return f"node is on chain id {self._chain_id}, the deployment record says {self.expected_chain_id}"
        if not meter.registered:
            return f"meter {self.address} is not registered on the market (the deployer registers each Pi)"
        if not meter.active:
            return f"meter {self.address} is deactivated on the market"
        if self.status.market_paused:
            return "the market is paused by its admin: nothing is sent, energy keeps counting and is reported after"
        return None

    def _reconcile(self) -> None:
        meter = self.status.meter
        assert meter is not None
        chain_uwh = meter.total_wh * UWH_PER_WH
        local_uwh = self.store.total_uwh()
        if chain_uwh > local_uwh:
            log.warning(
                "on-chain total %s Wh is ahead of the local counter %s Wh (database restored or replaced?); "
                "continuing from the on-chain total",
                meter.total_wh,
                local_uwh / UWH_PER_WH,
                extra={"event": "adopt_chain_total", "chain_wh": meter.total_wh},
            )
            self.adopt_total(chain_uwh)
        self._credited_seen = meter.credited_kwh
        pending = self.store.unresolved()
        log.info(
            "reconciled: on chain %s Wh (%s kWh credited), local %s Wh, %s transaction(s) waiting",
            meter.total_wh,
            meter.credited_kwh,
            local_uwh // UWH_PER_WH,
            len(pending),
            extra={"event": "reconciled", "chain_wh": meter.total_wh, "pending": len(pending)},
        )
        self._reconciled = True

    # -- the outbox --------------------------------------------------------------------------------------
    def _resolve(self, broadcast: bool = True) -> None:
        settled = False
        for row in self.store.unresolved():
            head = self._head
            if head is not None and self._waiting.get(row.id) == head:
                receipt = None  # no receipt at this block a step ago, and none can appear without a new one
            else:
                receipt = self._check_row(row)
                if receipt is False:
                    settled = True
                    continue
                if receipt is None and head is not None and self._head == head:
                    self._waiting[row.id] = head
            if receipt is not None:
                outcome = "mined" if receipt.status == 1 else "reverted"
                error = None if receipt.status == 1 else self._revert_reason(row)
                self._settle(row, outcome, receipt.block_number, error)
                settled = True
                continue
            # A row the node refused keeps status "signed" with sent_at set: it waits resend_seconds like any other.
            if broadcast and (row.sent_at is None or self.clock.time() - row.sent_at >= self.resend_seconds):
                self._broadcast(row)
        if settled:
            self.forget_reads()  # the next step reads the chain after this transaction, whatever the block
            meter = self.chain.get_meter(self.address)
            self.status.meter = meter
            before, self._credited_seen = self._credited_seen, meter.credited_kwh
            if before is not None and meter.credited_kwh > before:
                sold = meter.credited_kwh - before
                log.info(
                    "sold %s kWh; %s kWh credited in all",
                    sold,
                    meter.credited_kwh,
                    extra={"event": "sale", "kwh": sold, "credited_kwh": meter.credited_kwh},
                )
                if self.on_sale is not None:
                    self.on_sale(sold)

    def _check_row(self, row: OutboxRow) -> Any:
        """The row's receipt; None while it waits; False when it was settled as dropped."""
        receipt = self.chain.receipt(row.tx_hash)
        if receipt is None and row.nonce < self.chain.nonce(self.address, "latest"):
            # Mined meanwhile, or its nonce went to another transaction: look once more before deciding.
            receipt = self.chain.receipt(row.tx_hash)
            if receipt is None:
                self._settle(row, "dropped", None, "nonce used by another transaction")
                return False
        return receipt

    def _revert_reason(self, row: OutboxRow) -> str:
        meter = self.status.meter
        if row.kind == "report" and meter and row.total_wh is not None and meter.total_wh >= row.total_wh:
            return f"total {row.total_wh} Wh was already on chain"
        return "reverted"

    def _settle(self, row: OutboxRow, outcome: str, block: int | None, error: str | None) -> None:
        self.store.update_transaction(row.id, status=outcome, block_number=block, error=error)
        level = logging.INFO if outcome == "mined" else logging.WARNING
        log.log(
            level,
            "%s transaction %s (nonce %s) %s%s",
            row.kind,
            row.tx_hash,
            row.nonce,
            outcome,
            f": {error}" if error else "",
            extra={
                "event": "tx_" + outcome,
                "kind": row.kind,
                "tx_hash": row.tx_hash,
                "nonce": row.nonce,
                "total_wh": row.total_wh,
                "block": block,
            },
        )
        if self.metrics is not None:
            self.metrics.transactions.labels(row.kind, outcome).inc()
        if row.kind == "report":
            self._count_revert(outcome == "reverted" and not (error or "").endswith("was already on chain"))
        self.checkpoint("settled")

    def _count_revert(self, reverted: bool) -> None:
        """Back off after reverted reports: base, 2 x base, 4 x base... up to the cap; a mined report resets."""
        status = self.status
        if not reverted:
            if status.reverts_in_a_row:
                status.reverts_in_a_row, status.next_report_at = 0, None
                self.store.put(BACKOFF_KEY, {"reverts": 0, "until": None})
            return
        status.reverts_in_a_row += 1
        delay = min(self.revert_backoff_seconds * 2 ** (status.reverts_in_a_row - 1), self.revert_backoff_max_seconds)
        status.next_report_at = self.clock.time() + delay
        self.store.put(BACKOFF_KEY, {"reverts": status.reverts_in_a_row, "until": status.next_report_at})
        log.warning(
            "%s report(s) reverted in a row: the next one waits %.0f s",
            status.reverts_in_a_row,
            delay,
            extra={"event": "report_backoff", "reverts": status.reverts_in_a_row, "delay": delay},
        )

    def _broadcast(self, row: OutboxRow) -> None:
        try:
            self.chain.send_raw(row.raw_tx)
        except SendRejected as exc:
            message = str(exc)
            lowered = message.lower()
            if any(s in lowered for s in ALREADY_KNOWN):
                pass  # the node has it: as good as sent
            elif any(s in lowered for s in NONCE_TOO_LOW):
                # Its nonce is used: the next pass finds the receipt, or marks it dropped.
                self._waiting.pop(row.id, None)
                self.store.update_transaction(row.id, error=message)
                return
            else:
                log.error(
                    "node refused %s transaction %s (nonce %s): %s; retrying in %ss",
                    row.kind,
                    row.tx_hash,
                    row.nonce,
                    message,
                    self.resend_seconds,
                    extra={"event": "send_error", "tx_hash": row.tx_hash, "nonce": row.nonce},
                )
                self.store.update_transaction(row.id, sent_at=self.clock.time(), error=message)
                if self.metrics is not None:
                    self.metrics.transactions.labels(row.kind, "send_error").inc()
                return
        self.checkpoint("broadcast")
        self.store.update_transaction(row.id, status="sent", sent_at=self.clock.time())
        log.info(
            "sent %s transaction %s (nonce %s)%s",
            row.kind,
            row.tx_hash,
            row.nonce,
            f" with total {row.total_wh} Wh" if row.total_wh is not None else "",
            extra={
                "event": "tx_sent",
                "kind": row.kind,
                "tx_hash": row.tx_hash,
                "nonce": row.nonce,
                "total_wh": row.total_wh,
            },
        )
        self.checkpoint("marked_sent")

    def _sign_and_send(
        self, kind: str, call: dict[str, Any], total_wh: int | None = None, detail: dict[str, Any] | None = None
    ) -> str:
        self.forget_reads()  # whatever this transaction changes, the next step reads it
        chain_nonce = self.chain.nonce(self.address, "pending")
        nonce = max(chain_nonce, self.store.next_local_nonce() or 0)
        gas_price = self.chain.gas_price()
        if gas_price > self.max_gas_price_wei:
            raise SendRejected(
                f"node gas price {gas_price} wei is above chain.max_gas_price_gwei ({self.max_gas_price_wei} wei)"
            )
        tx = {
            **call,
            "value": 0,
            "gas": self.gas_limit,
            "gasPrice": gas_price,
            "nonce": nonce,
            "chainId": self._chain_id,
        }
        signed = self.account.sign_transaction(tx)
        tx_hash = signed.hash.to_0x_hex()
        self.checkpoint("signed")
        row_id = self.store.add_transaction(
            kind, nonce, tx_hash, bytes(signed.raw_transaction), self.clock.time(), total_wh=total_wh, detail=detail
        )
        if self.metrics is not None:
            self.metrics.transactions.labels(kind, "signed").inc()
        self.checkpoint("persisted")
        row = next(r for r in self.store.unresolved() if r.id == row_id)
        self._broadcast(row)
        return tx_hash

    # -- reports -----------------------------------------------------------------------------------------
    def report_target(self, meter: MeterInfo, local_wh: int) -> int | None:
        """The total to report now, or None when no whole kWh is due (or the rate rule forbids it yet).

        The contract rejects an increase larger than capacity x elapsed time (plus tolerance), measured in
        block time since the last report and capped at the market's report window; after an outage the
        backlog is therefore reported in as large a step as the contract will take, and the rest follows in
        the next reports.
        """
        if local_wh // 1000 <= meter.credited_kwh or local_wh <= meter.total_wh:
            return None
        since = meter.last_report_at or meter.registered_at
        elapsed = max(self._read("timestamp", self.chain.latest_timestamp) - since, 0)
        window = self.chain.max_report_seconds()
        if window is not None:
            elapsed = min(elapsed, window)
        tolerance = self._read("tolerance", self.chain.tolerance_percent)
        allowed_wh = meter.capacity_watts * elapsed * (100 + tolerance) // 100 // 3600
        total = min(local_wh, meter.total_wh + allowed_wh)
        if self.status.reverts_in_a_row:
            # The market refuses what this rule allows (a rule the agent does not know, a tolerance lowered): ask
            # for half as much after each revert in a row, but never less than the next whole kWh.
            step = (total - meter.total_wh) >> min(self.status.reverts_in_a_row, 32)
            total = min(local_wh, max(meter.total_wh + step, (meter.credited_kwh + 1) * 1000))
        if total // 1000 <= meter.credited_kwh:
            log.debug("kWh due but the capacity rule allows only %s Wh more so far", allowed_wh)
            return None
        return total

    def _maybe_report(self) -> None:
        if self.store.selling_paused():
            return
        until, now = self.status.next_report_at, self.clock.time()
        # A wait longer than the cap can only come from a wall clock set back: it does not hold reports for hours.
        if until is not None and now < until <= now + self.revert_backoff_max_seconds:
            return
        if any(row.kind == "report" for row in self.store.unresolved()):
            return
        meter = self.status.meter
        assert meter is not None
        total = self.report_target(meter, self.store.total_uwh() // UWH_PER_WH)
        if total is None:
            return
        self._sign_and_send("report", self.chain.report_call(total), total_wh=total)

    # -- buying energy back (the local UI) ---------------------------------------------------------------
    def quote(self, offer_id: int, kwh: int) -> Quote:
        """Check a purchase against the chain and the owner's cap without signing anything."""
        with self.lock:
            if kwh < 1:
                raise BuyError(f"kWh = {kwh}: buy at least 1 kWh")
            if self.max_buy_price_per_kwh <= 0:
                raise BuyError("buying is off: the owner sets buy.max_price_per_kwh in the agent's configuration")
            if self.chain.paused():
                raise BuyError("the market is paused: nothing can be bought until it is unpaused")
            if any(row.kind in ("buy", "approve") for row in self.store.unresolved()):
                raise BuyError("a purchase is still waiting to be mined; try again when it is")
            offer = self.chain.get_offer(offer_id)
            if not offer.open or offer.seller == "0x" + "0" * 40:
                raise BuyError(f"offer {offer_id} is not open")
            if offer.price_per_kwh > self.max_buy_price_per_kwh:
                raise BuyError(
                    f"offer {offer_id} asks {offer.price_per_kwh} token units per kWh, above the owner's cap "
                    f"buy.max_price_per_kwh ({self.max_buy_price_per_kwh} token units)"
                )
            if kwh > offer.remaining_kwh:
                raise BuyError(f"offer {offer_id} has {offer.remaining_kwh} kWh left, not {kwh}")
            cost = kwh * offer.price_per_kwh
            balance = self.chain.token_balance(self.address)
            if balance < cost:
                raise BuyError(
                    f"{kwh} kWh from offer {offer_id} cost {cost} token units; account {self.address} holds {balance}"
                )
            return Quote(offer_id, kwh, offer.price_per_kwh, cost, offer.seller)

    def buy(self, offer_id: int, kwh: int, quoted: Quote | None = None) -> list[str]:
        """Sign and send (approve if needed, then) buy; returns the transaction hashes.

        Every check of ``quote`` runs again here, whoever calls; with ``quoted``, the purchase must still
        cost exactly what was quoted and confirmed.
        """
        with self.lock:
            quote = self.quote(offer_id, kwh)
            if quoted is not None and (quote.price_per_kwh, quote.cost) != (quoted.price_per_kwh, quoted.cost):
                raise BuyError(
                    f"offer {offer_id} now costs {quote.cost} token units, not the {quoted.cost} confirmed; ask again"
                )
            cost = quote.cost
            hashes = []
            detail = {"offer_id": offer_id, "kwh": kwh, "cost": cost}
            if cost and self.chain.allowance(self.address, self.chain.market_address) < cost:
                hashes.append(
                    self._sign_and_send(
                        "approve", self.chain.approve_call(self.chain.market_address, cost), detail=detail
                    )
                )
            hashes.append(self._sign_and_send("buy", self.chain.buy_call(offer_id, kwh), detail=detail))
            log.info(
                "buying %s kWh from offer %s for %s token units",
                kwh,
                offer_id,
                cost,
                extra={"event": "buy", "offer_id": offer_id, "kwh": kwh, "cost": cost},
            )
            return hashes

    def open_offers(self, limit: int = 10, max_age: float = 15.0) -> list[Offer]:
        """The cheapest open offers, the oldest first at equal prices, from the offer book that auto-buy keeps
        (market events, offerbook.py), each read again with getOffer; without a book the newest open offers of the
        last 10 x ``limit``. Cached for ``max_age`` seconds: the page polls."""
        fetched_at, offers = self._offers
        if self.clock.time() - fetched_at < max_age:
            return offers
        found: list[Offer] = []
        book = getattr(self.auto_buyer, "book", None)
        with self.lock:
            if book is not None:
                book.scan()
                for candidate in book.cheapest():
                    if len(found) >= limit:
                        break
                    offer = self.chain.get_offer(candidate.offer_id)
                    if offer.open and offer.remaining_kwh > 0:
                        found.append(offer)
                    else:
                        book.forget(candidate.offer_id)
                self._offers = (self.clock.time(), found)
                return found
            last = self.chain.next_offer_id() - 1
            offer_id = last
            while offer_id >= 1 and len(found) < limit and last - offer_id < 10 * limit:
                offer = self.chain.get_offer(offer_id)
                if offer.open and offer.remaining_kwh > 0:
                    found.append(offer)
                offer_id -= 1
        self._offers = (self.clock.time(), found)
        return found

    def refresh_balances(self) -> dict[str, int]:
        """The meter's and its owner's tokens; read again only when the chain moved since the last read."""
        balances: dict[str, int] = {}
        with self.lock:
            if self._balances_view == self.chain_view and self._head is not None:
                return self.status.balances
            view = self.chain_view
            balances["meter"] = self.chain.token_balance(self.address)
            meter = self.status.meter
            if meter is not None and meter.registered and meter.owner.lower() != self.address.lower():
                balances["owner"] = self.chain.token_balance(meter.owner)
            self._balances_view = view
        self.status.balances = balances
        return balances

    # -- metrics -----------------------------------------------------------------------------------------
    def _publish(self) -> None:
        m = self.metrics
        if m is None:
            return
        status = self.status
        m.node_up.set(1 if status.node_up else 0)
        if status.market_paused is not None:
            m.market_paused.set(1 if status.market_paused else 0)
        if status.ether_wei is not None:
            m.ether_balance.set(status.ether_wei)
            m.gas_low.set(1 if status.gas_low else 0)
            m.transactions_left.set(status.transactions_left or 0)
        m.reverts_in_a_row.set(status.reverts_in_a_row)
        if status.node_up:
            m.node_syncing.set(1 if status.syncing else 0)
            if status.block is not None:
                m.block.set(status.block)
            if status.peers is not None:
                m.peers.set(status.peers)
        if status.meter is not None:
            m.reported_wh.set(status.meter.total_wh)
            m.credited_kwh.set(status.meter.credited_kwh)
        if self.auto_buyer is not None:
            self.auto_buyer.publish(m)
        for account, balance in status.balances.items():
            m.token_balance.labels(account).set(balance)
        unresolved = self.store.unresolved()
        m.pending.set(len(unresolved))
        # The monitoring's "report unconfirmed" alert reads this: a count of pending rows cannot tell one report
        # stuck for an hour from a new one every minute.
        m.oldest_unconfirmed_report.set(min((r.created_at for r in unresolved if r.kind == "report"), default=0))


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass (for tools and tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
