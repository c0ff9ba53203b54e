"""Automatic purchases: each whole kWh the home imports is bought from the cheapest open offers.

The meter side gives the home's cumulative imported energy (integer micro-Wh, never decreasing, persisted by
it) at every step. The buyer's rules:
- The first import it ever sees is the baseline: energy imported before auto-buying existed is not bought.
  After that every whole kWh above the baseline is bought once. kWh imported while auto-buy is off wait
  ("uncovered") and are bought when it is on again, within the price cap and the daily budget.
- Offers come from the offer book (offerbook.py), cheapest first, the oldest first at equal prices; each is
  read again with ``getOffer`` before buying: a closed, emptied, repriced or own offer is skipped. Never
  above ``buy.max_price_per_kwh``, never the Pi's own offers (seller = its owner or its account, or made by
  its meter).
- Daily budget: the tokens of the automatic purchases signed since local midnight (mined or still in flight)
  plus the next one never exceed ``buy.daily_budget``. Manual purchases on the page do not count: the owner
  confirms those one by one.

Durability is the outbox's (reporter.py): a purchase is one ``buy`` row (and, when the allowance does not cover a
kWh, one ``approve`` row before it, for exactly the purchase's cost; an allowance that covers some kWh is spent
first), signed and committed before it is broadcast, and
re-broadcast byte for byte after a restart. The counters are not kept anywhere else: covered kWh, kWh bought
and tokens spent are sums over the outbox's mined automatic ``buy`` rows, so no crash can separate a purchase
from its count. At most one buy or approve (automatic or manual) is unresolved at a time; a new purchase is
planned only when none is, from the chain's state at that moment, so nothing is bought or paid twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from heliogrid_agent.chain import Offer
from heliogrid_agent.offerbook import OfferBook
from heliogrid_agent.store import OutboxRow

if TYPE_CHECKING:
    from heliogrid_agent.reporter import Reporter

log = logging.getLogger("heliogrid_agent.autobuy")

UWH_PER_KWH = 10**9
ENABLED_KEY = "auto_buy_enabled"
BASELINE_KEY = "auto_buy_baseline_kwh"
MAX_CHECKS = 20  # getOffer calls one step may spend on candidates that turn out closed or changed


def local_midnight(wall: float) -> float:
    t = time.localtime(wall)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


@dataclass(frozen=True)
class Plan:
    offer: Offer
    kwh: int
    cost: int


@dataclass(frozen=True)
class Ledger:
    """What the outbox says about the automatic purchases."""

    bought_kwh: int  # mined
    spent: int  # token base units, mined
    spent_today: int  # signed since local midnight, mined or in flight
    in_flight: bool  # a buy or approve (automatic or manual) is unresolved
    reverts_in_a_row: int
    last_revert_at: float | None


class AutoBuyer:
    def __init__(
        self,
        reporter: Reporter,
        *,
        available: bool,
        daily_budget: int,
        book: OfferBook | None = None,
        revert_backoff_seconds: float | None = None,
        revert_backoff_max_seconds: float | None = None,
    ) -> None:
        self.reporter = reporter
        self.store = reporter.store
        self.chain = reporter.chain
        self.clock = reporter.clock
        self.available = available  # buy.auto: off in the configuration means off, whatever the page says
        self.daily_budget = daily_budget  # token base units
        self.book = book or OfferBook(reporter.chain, reporter.store)
        self.revert_backoff_seconds = revert_backoff_seconds or reporter.revert_backoff_seconds
        self.revert_backoff_max_seconds = revert_backoff_max_seconds or reporter.revert_backoff_max_seconds
        self.imported_uwh: int | None = None
        self.waiting: str | None = None  # why the uncovered kWh are not being bought now
        # (chain view, budget left, price cap) of the last plan that found nothing to buy: at the same block and
        # budget the offers, prices and balance it read are the same, so the next step does not read them again.
        self._found_nothing: tuple[int, int, int] | None = None
        self._forgot = False
        reporter.auto_buyer = self

    # -- the owner's switch ------------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.available and bool(self.store.get(ENABLED_KEY, True))

    def set_enabled(self, on: bool) -> None:
        if on and not self.available:
            raise ValueError("automatic buying is off in the configuration (buy.auto = false)")
        self.store.put(ENABLED_KEY, on)
        log.info("automatic buying %s", "on" if on else "off", extra={"event": "auto_buy_switch", "on": on})

    # -- the ledger --------------------------------------------------------------------------------------
    def ledger(self) -> Ledger:
        rows = self.store.auto_rows()
        midnight = local_midnight(self.clock.time())
        buys = [r for r in rows if r.kind == "buy"]
        mined = [r for r in buys if r.status == "mined"]
        reverts, last_revert = 0, None
        for row in reversed(rows):
            if row.status != "reverted":
                break
            reverts += 1
            last_revert = last_revert or row.created_at
        in_flight = any(r.kind in ("buy", "approve") for r in self.store.unresolved())
        return Ledger(
            bought_kwh=sum(int(r.detail["kwh"]) for r in mined),
            spent=sum(_cost(r) for r in mined),
            spent_today=sum(
                _cost(r) for r in buys if r.created_at >= midnight and r.status in ("mined", "signed", "sent")
            ),
            in_flight=in_flight,
            reverts_in_a_row=reverts,
            last_revert_at=last_revert,
        )

    def baseline_kwh(self) -> int | None:
        value = self.store.get(BASELINE_KEY)
        return None if value is None else int(value)

    def uncovered_kwh(self, ledger: Ledger | None = None) -> int | None:
        baseline = self.baseline_kwh()
        if self.imported_uwh is None or baseline is None:
            return None
        ledger = ledger or self.ledger()
        return max(self.imported_uwh // UWH_PER_KWH - baseline - ledger.bought_kwh, 0)

    # -- the step (the reporter's lock is held) ----------------------------------------------------------
    def step(self, imported_uwh: int | None) -> None:
        """Observe the import and buy what is due (what ``Reporter.step`` does, for callers without one)."""
        self.observe(imported_uwh)
        self.buy()

    def observe(self, imported_uwh: int | None) -> None:
        """Take the home's cumulative import (micro-Wh); the first one ever seen becomes the baseline."""
        if imported_uwh is None:
            return
        if self.imported_uwh is not None and imported_uwh < self.imported_uwh:
            log.warning(
                "imported energy went down from %s to %s uWh; keeping the higher value",
                self.imported_uwh,
                imported_uwh,
                extra={"event": "import_decreased"},
            )
            imported_uwh = self.imported_uwh
        self.imported_uwh = imported_uwh
        if self.baseline_kwh() is None:
            self.store.put(BASELINE_KEY, imported_uwh // UWH_PER_KWH)
            log.info(
                "automatic buying starts from %s kWh imported", imported_uwh // UWH_PER_KWH,
                extra={"event": "auto_buy_baseline", "kwh": imported_uwh // UWH_PER_KWH},
            )  # fmt: skip

    def buy(self) -> None:
        """Sign the next automatic purchase when one is due and allowed (the reporter's lock is held)."""
        if self.imported_uwh is None:
            return
        if not self.enabled:
            self._wait("automatic buying is off")
            return
        ledger = self.ledger()
        need = self.uncovered_kwh(ledger) or 0
        if need <= 0:
            self._wait(None)
            return
        if ledger.in_flight:
            self._wait("a purchase is waiting to be mined")
            return
        if ledger.reverts_in_a_row and ledger.last_revert_at is not None:
            delay = min(
                self.revert_backoff_seconds * 2 ** (ledger.reverts_in_a_row - 1), self.revert_backoff_max_seconds
            )
            now = self.clock.time()
            if now < ledger.last_revert_at + delay <= now + self.revert_backoff_max_seconds:
                self._wait(f"{ledger.reverts_in_a_row} automatic purchase(s) reverted in a row; next in {delay:.0f} s")
                return
        budget_left = self.daily_budget - ledger.spent_today
        key = (self.reporter.chain_view, budget_left, self.reporter.max_buy_price_per_kwh)
        if key == self._found_nothing:
            return
        self._forgot = False
        plan = self.plan(need, budget_left)
        if plan is None:
            # A plan that dropped closed offers from the book may find a live one behind them at the next step.
            self._found_nothing = None if self._forgot else key
            return
        self._found_nothing = None
        self._send(plan)

    def plan(self, need: int, budget_left: int) -> Plan | None:
        """The next purchase: up to ``need`` kWh from the cheapest live offer within the cap and the budget."""
        reporter = self.reporter
        cap = reporter.max_buy_price_per_kwh
        if budget_left <= 0:
            self._wait(f"today's budget buy.daily_budget ({self.daily_budget} token units) is spent")
            return None
        self.book.scan()
        meter = reporter.status.meter
        own = {reporter.address} | ({meter.owner} if meter is not None and meter.registered else set())
        checks = 0
        for candidate in self.book.cheapest(exclude=own):
            if candidate.price_per_kwh > cap:
                break
            if candidate.price_per_kwh > budget_left:
                self._wait(
                    f"the cheapest offer asks {candidate.price_per_kwh} token units per kWh; "
                    f"{budget_left} are left of today's budget"
                )
                return None
            if checks >= MAX_CHECKS:
                break
            checks += 1
            live = self.chain.get_offer(candidate.offer_id)
            owned = {live.seller.lower(), live.meter.lower()} & {a.lower() for a in own}
            if not live.open or live.remaining_kwh <= 0 or int(live.seller, 16) == 0 or owned:
                log.info(
                    "offer %s is gone (closed, emptied or own); skipped", candidate.offer_id,
                    extra={"event": "auto_buy_skip", "offer_id": candidate.offer_id},
                )  # fmt: skip
                self.book.forget(candidate.offer_id)
                self._forgot = True
                continue
            if live.price_per_kwh > cap or live.price_per_kwh > budget_left:
                continue  # not what the book read (a reorganised chain): the next scan corrects the book
            balance = self.chain.token_balance(reporter.address)
            price = max(live.price_per_kwh, 1)
            kwh = min(need, live.remaining_kwh, budget_left // price, balance // price)
            if kwh <= 0:
                self._wait(
                    f"account {reporter.address} holds {balance} token units; offer {live.offer_id} asks "
                    f"{live.price_per_kwh} per kWh"
                )
                return None
            return Plan(live, kwh, kwh * live.price_per_kwh)
        self._wait(f"no open offer at or below buy.max_price_per_kwh ({cap} token units)")
        return None

    def _send(self, plan: Plan) -> None:
        reporter, chain = self.reporter, self.chain
        detail: dict[str, Any] = {
            "auto": True,
            "offer_id": plan.offer.offer_id,
            "kwh": plan.kwh,
            "cost": str(plan.cost),
            "price_per_kwh": str(plan.offer.price_per_kwh),
        }
        allowance = chain.allowance(reporter.address, chain.market_address)
        if plan.cost and allowance < plan.cost:
            price = plan.offer.price_per_kwh
            if allowance < price:
                # Exactly this purchase's cost; the buy is signed once the approval is mined (one in flight).
                reporter._sign_and_send("approve", chain.approve_call(chain.market_address, plan.cost), detail=detail)
                self._wait("approving the next purchase")
                return
            # What was approved is bought first, even when the import grew meanwhile: a new approval for the larger
            # amount would be overtaken by the import again, block after block, and nothing would ever be bought.
            plan = Plan(plan.offer, allowance // price, allowance // price * price)
            detail |= {"kwh": plan.kwh, "cost": str(plan.cost)}
        reporter._sign_and_send("buy", chain.buy_call(plan.offer.offer_id, plan.kwh), detail=detail)
        self._wait(None)
        log.info(
            "auto-buying %s kWh from offer %s at %s token units per kWh (%s in all)",
            plan.kwh, plan.offer.offer_id, plan.offer.price_per_kwh, plan.cost,
            extra={"event": "auto_buy", "offer_id": plan.offer.offer_id, "kwh": plan.kwh, "cost": str(plan.cost)},
        )  # fmt: skip

    def _wait(self, reason: str | None) -> None:
        if reason != self.waiting and reason is not None:
            log.info("not buying now: %s", reason, extra={"event": "auto_buy_waiting"})
        self.waiting = reason

    # -- what the page shows -----------------------------------------------------------------------------
    def publish(self, metrics: Any) -> None:
        """Set the auto-buy gauges of ``metrics`` (an AgentMetrics) from the outbox's ledger."""
        ledger = self.ledger()
        metrics.auto_buy_enabled.set(1 if self.enabled else 0)
        metrics.auto_buy_bought_kwh.set(ledger.bought_kwh)
        metrics.auto_buy_tokens_spent.set(ledger.spent)
        metrics.auto_buy_spent_today.set(ledger.spent_today)
        metrics.auto_buy_daily_budget.set(self.daily_budget)
        uncovered = self.uncovered_kwh(ledger)
        if uncovered is not None:
            metrics.auto_buy_uncovered_kwh.set(uncovered)

    def status(self) -> dict[str, Any]:
        ledger = self.ledger()
        return {
            "available": self.available,
            "enabled": self.enabled,
            "imported_kwh": None if self.imported_uwh is None else self.imported_uwh / UWH_PER_KWH,
            "baseline_kwh": self.baseline_kwh(),
            "bought_kwh": ledger.bought_kwh,
            "tokens_spent": str(ledger.spent),
            "spent_today": str(ledger.spent_today),
            "daily_budget": str(self.daily_budget),
            "uncovered_kwh": self.uncovered_kwh(ledger),
            "in_flight": ledger.in_flight,
            "waiting": self.waiting,
        }


def _cost(row: OutboxRow) -> int:
    return int(row.detail.get("cost", 0))
