"""The agent: samples the sensor on a fixed cadence, keeps the counter durable, and runs the reporter."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from heliogrid_agent.clock import Clock, SystemClock
from heliogrid_agent.config import AgentConfig
from heliogrid_agent.meter import UWH_PER_WH, Meter, Sample
from heliogrid_agent.metrics import AgentMetrics
from heliogrid_agent.reporter import Reporter
from heliogrid_agent.sensors.base import Reading, Sensor
from heliogrid_agent.store import Store

log = logging.getLogger("heliogrid_agent")


def local_day(wall: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(wall))


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        sensor: Sensor,
        store: Store,
        reporter: Reporter | None = None,
        clock: Clock | None = None,
        metrics: AgentMetrics | None = None,
        imported_uwh: Callable[[], int | None] | None = None,
    ) -> None:
        self.config = config
        self.sensor = sensor
        self.store = store
        self.reporter = reporter
        self.clock = clock or SystemClock()
        self.metrics = metrics or AgentMetrics()
        # The home's cumulative import in micro-Wh, for automatic buying: by default the meter's total as committed to
        # the store, so a kWh is bought only once its import is durable.
        self.imported_uwh = imported_uwh if imported_uwh is not None else store.imported_uwh
        self.meter = Meter(
            config.meter.capacity_watts,
            config.meter.tolerance_percent,
            config.max_gap_seconds,
            total_uwh=store.total_uwh(),
            imported_uwh=store.imported_uwh(),
            max_import_watts=config.meter.max_import_watts,
            baseline=store.register_baseline(),
        )
        self.last_reading: Reading | None = None
        self.report_due = threading.Event()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        if reporter is not None:
            reporter.adopt_total = self.adopt_total
        self.metrics.exported_wh.set(self.meter.total_wh)
        self.metrics.imported_wh.set(self.meter.imported_wh)
        self.metrics.paused.set(1 if store.selling_paused() else 0)

    # -- sampling ----------------------------------------------------------------------------------------
    def sample_once(self) -> Sample:
        with self._lock:
            now, wall = self.clock.monotonic(), self.clock.time()
            try:
                reading = self.sensor.read()
            except OSError as exc:
                sample = self.meter.fail(now)
                error = getattr(exc, "reason", "io_error")
                self.metrics.sensor_errors.labels(error).inc()
                log.warning("sensor read failed (%s): %s", error, exc, extra={"event": "sensor_error", "reason": error})
                reading = None
            else:
                sample = self.meter.add(reading, now, wall)
                self.last_reading = reading
            if sample.delta_uwh or sample.import_delta_uwh or sample.baseline_changed:
                # The counters (and the meter's baseline) are on disk before anything can report them.
                self.store.record_sample(
                    sample.total_uwh,
                    sample.delta_uwh,
                    local_day(wall),
                    wall,
                    imported_uwh=sample.imported_uwh,
                    import_delta_uwh=sample.import_delta_uwh,
                    baseline=self.meter.baseline if sample.baseline_changed else None,
                )
        m = self.metrics
        m.last_sample.set(wall)
        if sample.event:
            m.meter_events.labels(sample.event).inc()
            log.warning(
                "meter register %s: %s",
                sample.event,
                {
                    "wrap": "it rolled over; the energy across the roll-over is credited",
                    "reset": "it went down; re-baselined, the interval since the last reading is not credited",
                    "rebaseline": "it jumped beyond the capacity and stayed there; re-baselined, nothing credited",
                }[sample.event],
                extra={"event": "meter_" + sample.event},
            )
        if sample.accepted:
            m.samples.inc()
            m.power_watts.set(sample.watts)
            m.exported_wh.set(sample.total_uwh / UWH_PER_WH)
            m.imported_wh.set(sample.imported_uwh / UWH_PER_WH)
            m.import_watts.set(self.meter.import_watts or 0.0)
        elif sample.bad:
            m.rejected.labels(sample.reason).inc()
            if sample.reason != "sensor_error" and reading is not None and reading.totals is not None:
                t = reading.totals
                log.warning(
                    "rejected meter registers export %r Wh, import %r Wh, power %r W: %s (baseline kept: %s)",
                    t.export_wh,
                    t.import_wh,
                    sample.watts,
                    sample.reason,
                    self.meter.baseline,
                    extra={"event": "bad_reading", "reason": sample.reason},
                )
            elif sample.reason != "sensor_error":
                log.warning(
                    "rejected reading %r W: %s (capacity %s W)",
                    sample.watts,
                    sample.reason,
                    self.meter.capacity_watts,
                    extra={"event": "bad_reading", "reason": sample.reason},
                )
        else:
            m.skipped.labels(sample.reason).inc()
            if sample.reason in ("gap", "clock"):
                log.warning(
                    "interval not credited: %s", sample.reason, extra={"event": "skip", "reason": sample.reason}
                )
        if reading is not None and reading.produced_watts is not None:
            m.produced_watts.set(reading.produced_watts)
        if sample.crossed_kwh:
            log.info(
                "counter passed %s kWh",
                sample.total_uwh // 10**9,
                extra={"event": "kwh", "total_wh": sample.total_uwh // UWH_PER_WH},
            )
            self.report_due.set()
        return sample

    def adopt_total(self, total_uwh: int) -> None:
        with self._lock:
            if total_uwh > self.meter.total_uwh:
                self.meter.total_uwh = total_uwh
                self.store.raise_total(total_uwh)

    def set_selling_paused(self, paused: bool) -> None:
        self.store.set_selling_paused(paused)
        self.metrics.paused.set(1 if paused else 0)
        if not paused:
            self.report_due.set()

    def toggle_selling(self) -> bool:
        paused = not self.store.selling_paused()
        self.set_selling_paused(paused)
        return paused

    # -- threads -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._spawn("sampler", self._sample_loop)
        if self.reporter is not None:
            self._spawn("reporter", self._report_loop)

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.report_due.set()
        for thread in self._threads:
            thread.join(timeout)

    def wait(self) -> None:
        while not self._stop.wait(1.0):
            pass

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _sample_loop(self) -> None:
        interval = self.config.meter.interval_seconds
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                self.sample_once()
            except Exception:
                log.exception("sampling failed", extra={"event": "sample_crash"})
            next_tick += interval
            delay = next_tick - time.monotonic()
            if delay < 0:  # fell behind (slow disk, suspended): resynchronise rather than burst
                next_tick, delay = time.monotonic(), 0
            self._stop.wait(delay)

    def _report_loop(self) -> None:
        assert self.reporter is not None
        poll = self.config.chain.poll_seconds
        balances_due = 0.0
        while not self._stop.is_set():
            self.report_due.clear()
            try:
                self.reporter.step(self._imported())
                if self.reporter.status.node_up and time.monotonic() >= balances_due:
                    self.reporter.refresh_balances()
                    balances_due = time.monotonic() + 15
            except Exception:
                log.exception("reporter step failed", extra={"event": "reporter_crash"})
            self.report_due.wait(poll)

    def _imported(self) -> int | None:
        if self.imported_uwh is None:
            return None
        try:
            return self.imported_uwh()
        except Exception:
            log.exception("reading the imported energy failed", extra={"event": "import_read_error"})
            return None

    @property
    def auto_buyer(self) -> Any | None:
        return None if self.reporter is None else self.reporter.auto_buyer

    def set_auto_buy(self, on: bool) -> None:
        if self.auto_buyer is None:
            raise ValueError("automatic buying needs the chain (chain.enabled = true)")
        self.auto_buyer.set_enabled(on)
        if on:
            self.report_due.set()

    def set_ask_price(self, units: int) -> None:
        """The owner's ask price from the page (token base units); ValueError when the agent cannot set it."""
        reporter = self.reporter
        if reporter is None or reporter.ask_price is None:
            raise ValueError("setting the ask price needs the chain (chain.enabled = true)")
        with reporter.lock:
            reporter.ask_price.set_price(units)
        self.report_due.set()

    # -- what the UI shows -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        wall = self.clock.time()
        reading = self.last_reading
        out: dict[str, Any] = {
            "time": wall,
            "power_watts": self.meter.watts,
            "produced_watts": reading.produced_watts if reading else None,
            "capacity_watts": self.meter.capacity_watts,
            "exported_wh": self.meter.total_wh,
            "imported_wh": self.meter.imported_wh,
            "import_watts": self.meter.import_watts,
            "today_imported_kwh": self.store.day_imported_uwh(local_day(wall)) / 10**9,
            "today_kwh": self.store.day_uwh(local_day(wall)) / 10**9,
            "selling_paused": self.store.selling_paused(),
            "transactions": [
                {
                    "kind": row.kind,
                    "hash": row.tx_hash,
                    "nonce": row.nonce,
                    "status": row.status,
                    "total_wh": row.total_wh,
                    "detail": row.detail,
                    "created_at": row.created_at,
                    "block": row.block_number,
                    "error": row.error,
                }
                for row in self.store.recent(self.config.ui.recent_transactions)
            ],
        }
        if self.reporter is not None:
            s = self.reporter.status
            out["address"] = self.reporter.address
            out["node"] = {"up": s.node_up, "syncing": s.syncing, "block": s.block, "peers": s.peers}
            out["problem"] = s.problem
            out["sold_kwh"] = s.meter.credited_kwh if s.meter else None
            out["onchain_total_wh"] = s.meter.total_wh if s.meter else None
            out["balances"] = {k: str(v) for k, v in s.balances.items()}
            out["market_paused"] = s.market_paused
            out["gas"] = {
                "ether_wei": None if s.ether_wei is None else str(s.ether_wei),
                "transactions_left": s.transactions_left,
                "low": s.gas_low,
            }
            out["reports"] = {"reverts_in_a_row": s.reverts_in_a_row, "next_report_at": s.next_report_at}
            if self.reporter.auto_buyer is not None:
                out["auto_buy"] = self.reporter.auto_buyer.status()
            if self.reporter.ask_price is not None:
                out["ask_price"] = self.reporter.ask_price.status()
        return out
