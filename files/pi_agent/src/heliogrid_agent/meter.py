"""Integration of exported power into energy, and the rejection of readings that cannot be true."""

from __future__ import annotations

import math
from dataclasses import dataclass

from heliogrid_agent.sensors.base import Reading

UWH_PER_WH = 1_000_000
UWH_PER_KWH = 1_000_000_000

# Why a sample credited nothing. The first four are bad readings (logged and counted as rejected);
# "baseline", "gap" and "clock" are intervals the meter cannot vouch for (after a start, a stall, a clock step).
BAD_REASONS = ("nan", "negative", "over_capacity", "sensor_error")


@dataclass(frozen=True)
class Sample:
    accepted: bool
    reason: str | None  # None when accepted
    delta_uwh: int
    total_uwh: int
    watts: float
    crossed_kwh: bool  # this sample completed at least one whole kWh

    @property
    def bad(self) -> bool:
        return self.reason in BAD_REASONS


class Meter:
    """Turns readings into a cumulative exported-energy counter, in integer micro-watt-hours.

    Each reading stands for the interval since the previous one (the rectangle rule with the new value):
    a power reading credits ``watts * dt / 3600`` Wh, a counting reading credits its exact count. A reading
    that is NaN/infinite, negative, or more than the installation can produce (capacity plus tolerance, plus
    one count for counting sensors) credits nothing, and its interval is lost rather than guessed.
    """

    def __init__(
        self,
        capacity_watts: float,
        tolerance_percent: float = 10.0,
        max_gap_seconds: float = 15.0,
        total_uwh: int = 0,
    ) -> None:
        if capacity_watts <= 0:
            raise ValueError(f"capacity_watts = {capacity_watts} must be greater than 0")
        self.capacity_watts = capacity_watts
        self.limit_watts = capacity_watts * (1 + tolerance_percent / 100)
        self.max_gap_seconds = max_gap_seconds
        self.total_uwh = total_uwh
        self.watts = 0.0
        self._last: float | None = None
        self._fraction = 0.0  # the sub-µWh part of power integration, carried to the next sample

    @property
    def total_wh(self) -> float:
        return self.total_uwh / UWH_PER_WH

    @property
    def whole_kwh(self) -> int:
        return self.total_uwh // UWH_PER_KWH

    def restart(self) -> None:
        """Forget the previous sample time: the next reading starts a new interval and credits nothing."""
        self._last = None

    def fail(self, now: float) -> Sample:
        """Record a sensor that could not be read at ``now``: its interval credits nothing."""
        return self._reject("sensor_error", now, math.nan)

    def add(self, reading: Reading, now: float) -> Sample:
        """Account ``reading`` taken at monotonic time ``now``."""
        watts = reading.watts
        if not math.isfinite(watts):
            return self._reject("nan", now, watts)
        if watts < 0 or (reading.energy_uwh is not None and reading.energy_uwh < 0):
            return self._reject("negative", now, watts)
        if reading.energy_uwh is None and watts > self.limit_watts:
            return self._reject("over_capacity", now, watts)

        previous, self._last = self._last, now
        if previous is None:
            return self._skip("baseline", watts)
        dt = now - previous
        if dt <= 0:
            return self._skip("clock", watts)
        if dt > self.max_gap_seconds:
            return self._skip("gap", watts)

        if reading.energy_uwh is not None:
            allowed = self.limit_watts * dt / 3600 * UWH_PER_WH + reading.resolution_uwh
            if reading.energy_uwh > allowed:
                return self._reject("over_capacity", now, watts)
            delta = reading.energy_uwh
        else:
            exact = watts * dt / 3600 * UWH_PER_WH + self._fraction
            delta = int(exact)
            self._fraction = exact - delta
        before = self.whole_kwh
        self.total_uwh += delta
        self.watts = watts
        return Sample(True, None, delta, self.total_uwh, watts, self.whole_kwh > before)

    def _reject(self, reason: str, now: float, watts: float) -> Sample:
        self._last = now
        return Sample(False, reason, 0, self.total_uwh, watts, False)

    def _skip(self, reason: str, watts: float) -> Sample:
        self.watts = watts
        return Sample(False, reason, 0, self.total_uwh, watts, False)
