"""The owner's ask price: what each credited kWh is offered at on the market (EnergyMarket.setAskPrice).

The market opens an offer for a report's kWh only when the meter's owner has an ask price, and only the owner's
account can set it. The agent sets it only when the meter's key is the owner's account (a lab Pi, or a home
that wants it so); with a separate owner account it sends nothing, and the owner sets it from their own wallet.

The price wanted is the page's choice (kept in the store) or else ``sell.ask_price_per_kwh``. Whenever it differs
from the chain's ``askPrice(owner)``, one ``ask`` transaction goes through the outbox (reporter.py): signed and
committed before it is broadcast, re-broadcast byte for byte after a restart, at most one in flight. A value is
sent once per change: if the chain still differs after its transaction settled (reverted, or changed from another
wallet holding the same key), the agent says so and waits for a new value instead of sending the same one again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from heliogrid_agent.reporter import Reporter

log = logging.getLogger("heliogrid_agent.askprice")

PRICE_KEY = "ask_price_per_kwh"  # the page's choice, token base units as a decimal string
READ_SECONDS = 15.0  # how often the chain's askPrice is read again when nothing changed


class AskPrice:
    def __init__(self, reporter: Reporter, *, configured: int) -> None:
        self.reporter = reporter
        self.store = reporter.store
        self.chain = reporter.chain
        self.clock = reporter.clock
        self.configured = configured  # sell.ask_price_per_kwh in token base units; 0: do not offer
        self.on_chain: int | None = None  # askPrice(owner), as last read
        self._read_due = float("-inf")
        self._read_view: int | None = None  # the reporter's chain_view at the last read: the same block, the same price
        self._sent: int | None = None  # the value this run last signed: never signed again until the wanted changes
        self._stuck_warned: int | None = None
        reporter.ask_price = self

    # -- the owner's choice --------------------------------------------------------------------------------
    @property
    def wanted(self) -> int:
        chosen = self.store.get(PRICE_KEY)
        return self.configured if chosen is None else int(chosen)

    @property
    def source(self) -> str:
        return "config" if self.store.get(PRICE_KEY) is None else "page"

    def applies(self) -> bool:
        """True when the meter's key is its owner's account: the only case where the agent may set the price."""
        meter = self.reporter.status.meter
        return meter is not None and meter.registered and meter.owner.lower() == self.reporter.address.lower()

    def set_price(self, units: int) -> None:
        """The page's choice (token base units); it overrides the configuration until changed again."""
        if units < 0:
            raise ValueError(f"ask price = {units} token units; expected 0 (do not offer) or more")
        if not self.applies():
            raise ValueError(
                "the meter's owner is a separate account: the owner sets the ask price from their own wallet "
                "(EnergyMarket.setAskPrice)"
            )
        self.store.put(PRICE_KEY, str(units))
        self._sent = self._stuck_warned = None  # a new choice may be sent, even a value sent before
        self._read_due = float("-inf")
        log.info("ask price set to %s token units per kWh", units, extra={"event": "ask_price_chosen", "price": units})

    # -- the step (the reporter's lock is held, the chain has no problem) -----------------------------------
    def step(self) -> None:
        meter = self.reporter.status.meter
        if meter is None or not meter.registered:
            return
        now = self.clock.time()
        in_flight = [row for row in self.store.unresolved() if row.kind == "ask"]
        if in_flight:
            self._sent = int(in_flight[0].detail["price_per_kwh"])  # sent before a restart: not signed again
            self._read_due = float("-inf")  # read the chain again once it settles
            return
        if now >= self._read_due and self._read_view != self.reporter.chain_view:
            view = self.reporter.chain_view
            self.on_chain = self.chain.ask_price(meter.owner)
            self._read_due, self._read_view = now + READ_SECONDS, view
        wanted = self.wanted
        if not self.applies():
            return
        if self.on_chain == wanted:
            self._sent = wanted  # a later change on chain is not undone without a new choice
            return
        last = self.store.last_transaction("ask")
        dropped = last is not None and last.status == "dropped" and last.detail.get("price_per_kwh") == str(wanted)
        if self._sent == wanted and not dropped:
            if self._stuck_warned != wanted:
                self._stuck_warned = wanted
                log.warning(
                    "the market's ask price is %s, not the %s this agent sent; not sending it again until the "
                    "price is changed on the page or the agent restarts",
                    self.on_chain, wanted,
                    extra={"event": "ask_price_differs", "price": wanted, "on_chain": self.on_chain},
                )  # fmt: skip
            return
        self._sent = wanted
        self._read_due = float("-inf")  # read the chain again at the first step after it settles
        self.reporter._sign_and_send("ask", self.chain.ask_call(wanted), detail={"price_per_kwh": str(wanted)})
        log.info(
            "setting the ask price to %s token units per kWh (on chain: %s)", wanted, self.on_chain,
            extra={"event": "ask_price_send", "price": wanted, "on_chain": self.on_chain},
        )  # fmt: skip

    # -- what the page shows -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        applies = self.applies()
        return {
            "applies": applies,
            "on_chain": None if self.on_chain is None else str(self.on_chain),
            "wanted": str(self.wanted),
            "source": self.source,
            "in_flight": any(row.kind == "ask" for row in self.store.unresolved()),
            "note": None
            if applies
            else "the meter's owner is a separate account: the owner sets the ask price from their own wallet",
        }
