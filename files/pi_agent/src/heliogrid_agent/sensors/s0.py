"""S0 pulse outputs of an energy meter (DIN 43864 / EN 62053-31) on GPIO pins: export, and optionally import."""

from __future__ import annotations

import threading
from typing import Any

from gpiozero import DigitalInputDevice

from heliogrid_agent.clock import Clock
from heliogrid_agent.config import S0Config
from heliogrid_agent.sensors.base import Reading, Sensor

UWH_PER_KWH = 1_000_000_000


class PulseCounter:
    """One S0 input: counts the pulses (each 1/impulses_per_kwh kWh) and keeps the time between the last two.

    The count is kept exact: energy is derived from the total pulse count, so the sum of all readings is
    ``pulses * 1e9 // impulses_per_kwh`` micro-Wh with no rounding drift. Power is estimated from the time
    between the last two pulses, as the meter's own display does.
    """

    def __init__(self, pin: int, config: S0Config, clock: Clock, pin_factory: Any | None) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self.pulses = 0
        self._emitted_uwh = 0
        self._last_pulse: float | None = None
        self._pulse_period: float | None = None
        self._device = DigitalInputDevice(
            pin,
            pull_up=config.pull_up,
            bounce_time=config.bounce_ms / 1000 if config.bounce_ms else None,
            pin_factory=pin_factory,
        )
        self._device.when_activated = self._on_pulse

    def _on_pulse(self) -> None:
        now = self._clock.monotonic()
        with self._lock:
            self.pulses += 1
            if self._last_pulse is not None:
                self._pulse_period = now - self._last_pulse
            self._last_pulse = now

    def take(self, now: float) -> tuple[int, float]:
        """The energy (µWh) counted since the previous call, and the power estimated at ``now``."""
        with self._lock:
            pulses, last, period = self.pulses, self._last_pulse, self._pulse_period
        total_uwh = pulses * UWH_PER_KWH // self._config.impulses_per_kwh
        energy, self._emitted_uwh = total_uwh - self._emitted_uwh, total_uwh
        if last is None or period is None or period <= 0:
            return energy, 0.0
        # Once the next pulse is overdue, the power can be at most one pulse per time since the last one.
        span = max(period, now - last)
        return energy, UWH_PER_KWH / self._config.impulses_per_kwh / 1e6 * 3600 / span

    def close(self) -> None:
        self._device.close()


class S0Sensor(Sensor):
    """Counts the meter's export pulses on ``pin`` and, when ``import_pin`` is set, its import pulses there.

    Bidirectional meters (e.g. Eastron SDM72D, SDM630 with two S0 outputs) give one output per direction;
    without ``import_pin`` the reading has no import (``import_uwh`` None).
    """

    name = "s0"

    def __init__(self, config: S0Config, clock: Clock, pin_factory: Any | None = None) -> None:
        self._config = config
        self._clock = clock
        self._export = PulseCounter(config.pin, config, clock, pin_factory)
        self._import = (
            None if config.import_pin is None else PulseCounter(config.import_pin, config, clock, pin_factory)
        )

    @property
    def uwh_per_pulse(self) -> float:
        return UWH_PER_KWH / self._config.impulses_per_kwh

    @property
    def pulses(self) -> int:
        return self._export.pulses

    @property
    def import_pulses(self) -> int | None:
        return None if self._import is None else self._import.pulses

    def read(self) -> Reading:
        now = self._clock.monotonic()
        energy, watts = self._export.take(now)
        import_uwh, import_watts = (None, None) if self._import is None else self._import.take(now)
        return Reading(
            watts=watts,
            energy_uwh=energy,
            resolution_uwh=-(-UWH_PER_KWH // self._config.impulses_per_kwh),
            import_uwh=import_uwh,
            import_watts=import_watts,
        )

    def close(self) -> None:
        self._export.close()
        if self._import is not None:
            self._import.close()
