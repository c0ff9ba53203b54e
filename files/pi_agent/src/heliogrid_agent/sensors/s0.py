"""S0 pulse output of an energy meter (DIN 43864 / EN 62053-31) on a GPIO pin."""

from __future__ import annotations

import threading
from typing import Any

from gpiozero import DigitalInputDevice

from heliogrid_agent.clock import Clock
from heliogrid_agent.config import S0Config
from heliogrid_agent.sensors.base import Reading, Sensor

UWH_PER_KWH = 1_000_000_000


class S0Sensor(Sensor):
    """Counts the meter's pulses; each pulse is 1/impulses_per_kwh kWh of exported energy.

    The count is kept exact: energy is derived from the total pulse count, so the sum of all readings is
    ``pulses * 1e9 // impulses_per_kwh`` micro-Wh with no rounding drift. Power is estimated from the time
    between the last two pulses, as the meter's own display does.
    """

    name = "s0"

    def __init__(self, config: S0Config, clock: Clock, pin_factory: Any | None = None) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._pulses = 0
        self._emitted_uwh = 0
        self._last_pulse: float | None = None
        self._pulse_period: float | None = None
        self._device = DigitalInputDevice(
            config.pin,
            pull_up=config.pull_up,
            bounce_time=config.bounce_ms / 1000 if config.bounce_ms else None,
            pin_factory=pin_factory,
        )
        self._device.when_activated = self._on_pulse

    @property
    def uwh_per_pulse(self) -> float:
        return UWH_PER_KWH / self._config.impulses_per_kwh

    @property
    def pulses(self) -> int:
        with self._lock:
            return self._pulses

    def _on_pulse(self) -> None:
        now = self._clock.monotonic()
        with self._lock:
            self._pulses += 1
            if self._last_pulse is not None:
                self._pulse_period = now - self._last_pulse
            self._last_pulse = now

    def read(self) -> Reading:
        now = self._clock.monotonic()
        with self._lock:
            pulses = self._pulses
            last, period = self._last_pulse, self._pulse_period
        total_uwh = pulses * UWH_PER_KWH // self._config.impulses_per_kwh
        energy = total_uwh - self._emitted_uwh
        self._emitted_uwh = total_uwh
        return Reading(
            watts=self._power(now, last, period),
            energy_uwh=energy,
            resolution_uwh=-(-UWH_PER_KWH // self._config.impulses_per_kwh),
        )

    def _power(self, now: float, last: float | None, period: float | None) -> float:
        if last is None or period is None or period <= 0:
            return 0.0
        # Once the next pulse is overdue, the power can be at most one pulse per time since the last one.
        span = max(period, now - last)
        return self.uwh_per_pulse / 1e6 * 3600 / span

    def close(self) -> None:
        self._device.close()
