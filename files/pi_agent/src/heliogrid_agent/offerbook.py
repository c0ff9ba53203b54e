"""The market's open offers, kept as a local index from its events, so that the cheapest are found without
calling ``getOffer`` on every offer ever made.

- Each scan reads the market's OfferCreated, EnergyPurchased and OfferCancelled logs (eth_getLogs) from the
  block after the last one scanned up to the head, and applies them: an offer enters with its seller, meter,
  price and kWh, loses the kWh bought from it, and leaves when empty or cancelled.
- The index and its cursor (block number and hash) are written to the store together, in one commit, so a
  restart goes on from a consistent point and never applies an event twice.
- Reorg-safe: a scan first checks that the cursor's block still has the hash it had. If not, the chain was
  reorganised under the index, and the index is rebuilt from the market's deployment block (Clique reorgs
  are rare and short; the market's logs are few).
- The index only proposes: before buying, the buyer reads each candidate with ``getOffer`` and skips one that
  is gone, has changed, or is its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from heliogrid_agent.chain import Chain, OfferEvent
from heliogrid_agent.store import Store

log = logging.getLogger("heliogrid_agent.offerbook")

BOOK_KEY = "offer_book"
CHUNK_BLOCKS = 50_000  # blocks per eth_getLogs call
PERSIST_EVERY_BLOCKS = 1_000  # a cursor that moved over blocks without offer events is written this seldom


@dataclass(frozen=True)
class BookOffer:
    offer_id: int
    seller: str
    meter: str
    remaining_kwh: int
    price_per_kwh: int


class OfferBook:
    def __init__(self, chain: Chain, store: Store) -> None:
        self.chain = chain
        self.store = store
        self.offers: dict[int, BookOffer] = {}
        self.block: int | None = None  # the last block applied
        self.hash: str | None = None
        self._saved_block: int | None = None
        self._load()

    def _load(self) -> None:
        saved = self.store.get(BOOK_KEY)
        if not saved or saved.get("market", "").lower() != self.chain.market_address.lower():
            return  # none yet, or a record of another (migrated-from) market: start from the deployment block
        self.block, self.hash = saved["block"], saved["hash"]
        self._saved_block = self.block
        self.offers = {
            o["offer_id"]: BookOffer(o["offer_id"], o["seller"], o["meter"], o["remaining_kwh"], int(o["price"]))
            for o in saved["offers"]
        }

    def _save(self) -> None:
        # Prices (token base units, up to 10^24) are kept as text, as the outbox's details keep costs.
        offers = [
            {"offer_id": o.offer_id, "seller": o.seller, "meter": o.meter, "remaining_kwh": o.remaining_kwh,
             "price": str(o.price_per_kwh)}
            for o in self.offers.values()
        ]  # fmt: skip
        self.store.put(
            BOOK_KEY,
            {"market": self.chain.market_address, "block": self.block, "hash": self.hash, "offers": offers},
        )
        self._saved_block = self.block

    def reset(self) -> None:
        self.offers, self.block, self.hash = {}, None, None

    def scan(self) -> int:
        """Apply the events up to the head; returns how many were applied. Raises NodeUnavailable."""
        head, head_hash = self.chain.head()
        if self.block is not None and (self.block > head or self.chain.block_hash(self.block) != self.hash):
            log.warning(
                "block %s is no longer the one the offer book read (reorganised chain): rebuilding the book",
                self.block,
                extra={"event": "offer_book_reorg", "block": self.block},
            )
            self.reset()
        start = self.chain.market_block if self.block is None else self.block + 1
        applied = 0
        changed = self.block is None
        while start <= head:
            end = min(start + CHUNK_BLOCKS - 1, head)
            for event in self.chain.offer_events(start, end):
                self._apply(event)
                applied += 1
            start = end + 1
        if self.block != head:
            self.block, self.hash = head, head_hash
        if changed or applied or self._saved_block is None or head - self._saved_block >= PERSIST_EVERY_BLOCKS:
            self._save()
        return applied

    def _apply(self, event: OfferEvent) -> None:
        if event.kind == "created":
            self.offers[event.offer_id] = BookOffer(
                event.offer_id, event.seller, event.meter, event.kwh, event.price_per_kwh
            )
            return
        offer = self.offers.get(event.offer_id)
        if offer is None:
            return
        remaining = offer.remaining_kwh - event.kwh if event.kind == "purchased" else 0
        if remaining <= 0:
            del self.offers[event.offer_id]
        else:
            self.offers[event.offer_id] = BookOffer(
                offer.offer_id, offer.seller, offer.meter, remaining, offer.price_per_kwh
            )

    def forget(self, offer_id: int) -> None:
        """Drop an offer that getOffer found closed (its closing event is read in a later scan anyway)."""
        self.offers.pop(offer_id, None)

    def cheapest(self, exclude: set[str] | None = None) -> list[BookOffer]:
        """Open offers by price, the oldest first among equal prices, without those of the addresses in ``exclude``
        (as seller or as meter)."""
        excluded = {a.lower() for a in exclude or set()}
        offers = [
            o for o in self.offers.values() if o.seller.lower() not in excluded and o.meter.lower() not in excluded
        ]
        return sorted(offers, key=lambda o: (o.price_per_kwh, o.offer_id))

    def summary(self) -> dict[str, Any]:
        return {"open_offers": len(self.offers), "block": self.block}
