"""Integration of exported (and imported) power into energy, and the rejection of readings that cannot be true."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from heliogrid_agent.sensors.base import Reading, Totals

UWH_PER_WH = 1_000_000
UWH_PER_KWH = 1_000_000_000

# Why a sample credited nothing. The first four are bad readings (logged and counted as rejected);
# "baseline", "gap", "clock" and "reset" are intervals the meter cannot vouch for (after a start, a stall, a clock
# step, a meter register that went down).
BAD_REASONS = ("nan", "negative", "over_capacity", "sensor_error")
# A meter register that jumps by more than the installation can deliver is rejected; when it holds the new value
# for this many readings in a row, the meter was replaced or rewritten: re-baseline there.
JUMPS_BEFORE_REBASELINE = 3


@dataclass(frozen=True)
class Baseline:
    """The meter registers' values (µWh) at the last credited reading, and its wall time: persisted with the
    counters in one commit, so a restart credits the energy since then exactly once."""

    export_uwh: int
    import_uwh: int | None
    at: float


@dataclass(frozen=True)
class Sample:
    accepted: bool
    reason: str | None  # None when accepted
    delta_uwh: int
    total_uwh: int
    watts: float
    crossed_kwh: bool  # this sample completed at least one whole kWh
    import_delta_uwh: int = 0
    imported_uwh: int = 0
    event: str | None = None  # a meter register's "wrap" (credited) or "reset" / "rebaseline" (not credited)
    baseline_changed: bool = False  # the register baseline moved: persist it

    @property
    def bad(self) -> bool:
        return self.reason in BAD_REASONS


def register_uwh(wh: float) -> int:
    """A register's value as integer µWh, rounded to the whole Wh: a float32 kWh register holds spurious digits
    below its resolution (50.2 kWh reads 50.2000008). Deltas are differences of these values, so the credited sum
    telescopes to the register's own difference with no drift."""
    return round(wh) * UWH_PER_WH


class Meter:
    """Turns readings into cumulative exported and imported energy counters, in integer micro-watt-hours.

    Each reading stands for the interval since the previous one (the rectangle rule with the new value):
    a power reading credits ``watts * dt / 3600`` Wh, a counting reading credits its exact count. A reading
    that is NaN/infinite, negative, or more than the installation can produce (capacity plus tolerance, plus
    one count for counting sensors) credits nothing, and its interval is lost rather than guessed. Import is
    checked the same way against ``max_import_watts``.

    A reading with the meter's own ``totals`` credits the registers' difference from the baseline, which
    persists (``baseline``), so a bad reading, a missing meter or a restart loses nothing: the next good reading
    credits everything since the baseline, once. A register that goes down is a reset (re-baselined, nothing
    credited) unless it wrapped at its known roll-over with a plausible delta.
    """

    def __init__(
        self,
        capacity_watts: float,
        tolerance_percent: float = 10.0,
        max_gap_seconds: float = 15.0,
        total_uwh: int = 0,
        imported_uwh: int = 0,
        max_import_watts: float = 25_000.0,
        baseline: Baseline | None = None,
    ) -> None:
        if capacity_watts <= 0:
            raise ValueError(f"capacity_watts = {capacity_watts} must be greater than 0")
        self.capacity_watts = capacity_watts
        self.limit_watts = capacity_watts * (1 + tolerance_percent / 100)
        self.import_limit_watts = max_import_watts * (1 + tolerance_percent / 100)
        self.max_gap_seconds = max_gap_seconds
        self.total_uwh = total_uwh
        self.imported_uwh = imported_uwh
        self.baseline = baseline
        self.watts = 0.0
        self.import_watts: float | None = None
        self._last: float | None = None
        self._fraction = 0.0  # the sub-µWh part of power integration, carried to the next sample
        self._import_fraction = 0.0
        self._baseline_mono: float | None = None  # monotonic time of the baseline when set in this run
        self._jumps: list[tuple[int, int | None]] = []  # implausible register values in a row

    @property
    def total_wh(self) -> float:
        return self.total_uwh / UWH_PER_WH

    @property
    def imported_wh(self) -> float:
        return self.imported_uwh / UWH_PER_WH

    @property
    def whole_kwh(self) -> int:
        return self.total_uwh // UWH_PER_KWH

    def restart(self) -> None:
        """Forget the previous sample time: the next reading starts a new interval and credits nothing."""
        self._last = None

    def fail(self, now: float) -> Sample:
        """Record a sensor that could not be read at ``now``: its interval credits nothing."""
        return self._reject("sensor_error", now, math.nan)

    def add(self, reading: Reading, now: float, wall: float | None = None) -> Sample:
        """Account ``reading`` taken at monotonic time ``now`` (and wall time ``wall``, for register baselines)."""
        watts = reading.watts
        if not math.isfinite(watts) or not _finite(reading.import_watts):
            return self._reject("nan", now, watts)
        if reading.totals is not None:
            return self._add_totals(reading.totals, watts, now, now if wall is None else wall)
        if (
            watts < 0
            or (reading.energy_uwh is not None and reading.energy_uwh < 0)
            or (reading.import_watts is not None and reading.import_watts < 0)
            or (reading.import_uwh is not None and reading.import_uwh < 0)
        ):
            return self._reject("negative", now, watts)
        if reading.energy_uwh is None and watts > self.limit_watts:
            return self._reject("over_capacity", now, watts)
        if reading.import_watts is not None and reading.import_watts > self.import_limit_watts:
            return self._reject("over_capacity", now, watts)

        previous, self._last = self._last, now
        if previous is None:
            return self._skip("baseline", reading)
        dt = now - previous
        if dt <= 0:
            return self._skip("clock", reading)
        if dt > self.max_gap_seconds:
            return self._skip("gap", reading)

        if reading.energy_uwh is not None:
            allowed = self.limit_watts * dt / 3600 * UWH_PER_WH + reading.resolution_uwh
            if reading.energy_uwh > allowed:
                return self._reject("over_capacity", now, watts)
            delta = reading.energy_uwh
        else:
            exact = watts * dt / 3600 * UWH_PER_WH + self._fraction
            delta = int(exact)
            self._fraction = exact - delta
        import_delta = 0
        if reading.import_uwh is not None:
            allowed = self.import_limit_watts * dt / 3600 * UWH_PER_WH + reading.resolution_uwh
            if reading.import_uwh > allowed:
                return self._reject("over_capacity", now, watts)
            import_delta = reading.import_uwh
        elif reading.import_watts is not None:
            exact = reading.import_watts * dt / 3600 * UWH_PER_WH + self._import_fraction
            import_delta = int(exact)
            self._import_fraction = exact - import_delta
        return self._credit(delta, import_delta, watts, reading.import_watts)

    # -- a meter's own registers -------------------------------------------------------------------------
    def _add_totals(self, totals: Totals, watts: float, now: float, wall: float) -> Sample:
        self._last = now
        values = (totals.export_wh, totals.import_wh)
        if not all(_finite(v) for v in values):
            return self._reject("nan", now, watts)
        if any(v is not None and v < 0 for v in values):
            return self._reject("negative", now, watts)
        export = register_uwh(totals.export_wh)
        imported = None if totals.import_wh is None else register_uwh(totals.import_wh)
        base = self.baseline
        if base is None or (imported is None) != (base.import_uwh is None):
            return self._rebaseline("baseline", export, imported, watts, now, wall)
        elapsed = now - self._baseline_mono if self._baseline_mono is not None else wall - base.at
        resolution = register_uwh(totals.resolution_wh)
        wrap = None if not totals.wrap_wh else register_uwh(totals.wrap_wh)
        export_delta, export_event = _register_delta(base.export_uwh, export, wrap)
        import_delta, import_event = (0, None) if imported is None else _register_delta(base.import_uwh, imported, wrap)
        elapsed_h = max(elapsed, 0.0) / 3600
        export_ok = export_delta is not None and export_delta <= self.limit_watts * elapsed_h * UWH_PER_WH + resolution
        import_ok = (
            import_delta is not None and import_delta <= self.import_limit_watts * elapsed_h * UWH_PER_WH + resolution
        )
        wrapped = "wrap" in (export_event, import_event)
        if export_delta is None or import_delta is None or (wrapped and not (export_ok and import_ok)):
            # Gone down (and not a plausible roll-over): the meter was reset; what it counted since is unknown.
            return self._rebaseline("reset", export, imported, watts, now, wall)
        if not (export_ok and import_ok):
            return self._jump(export, imported, watts, now, wall)
        self._jumps = []
        self.baseline = Baseline(export, imported, wall)
        self._baseline_mono = now
        sample = self._credit(export_delta, import_delta, watts, None)
        return replace(sample, event="wrap" if wrapped else None, baseline_changed=True)

    def _jump(self, export: int, imported: int | None, watts: float, now: float, wall: float) -> Sample:
        """A register moved more than the installation can deliver: garbage, or a meter swapped or rewritten."""
        consistent = all(export >= e and (imported is None or i is None or imported >= i) for e, i in self._jumps)
        self._jumps = [*self._jumps, (export, imported)] if consistent else [(export, imported)]
        if len(self._jumps) >= JUMPS_BEFORE_REBASELINE:
            return self._rebaseline("reset", export, imported, watts, now, wall, event="rebaseline")
        return self._reject("over_capacity", now, watts)

    def _rebaseline(
        self,
        reason: str,
        export: int,
        imported: int | None,
        watts: float,
        now: float,
        wall: float,
        event: str | None = None,
    ) -> Sample:
        self._jumps = []
        self.baseline = Baseline(export, imported, wall)
        self._baseline_mono = now
        self.watts = watts
        return Sample(
            False,
            reason,
            0,
            self.total_uwh,
            watts,
            False,
            imported_uwh=self.imported_uwh,
            event=event or (reason if reason == "reset" else None),
            baseline_changed=True,
        )

    # -- shared ------------------------------------------------------------------------------------------
    def _credit(self, delta: int, import_delta: int, watts: float, import_watts: float | None) -> Sample:
        before = self.whole_kwh
        self.total_uwh += delta
        self.imported_uwh += import_delta
        self.watts = watts
        self.import_watts = import_watts
        return Sample(
            True,
            None,
            delta,
            self.total_uwh,
            watts,
            self.whole_kwh > before,
            import_delta_uwh=import_delta,
            imported_uwh=self.imported_uwh,
        )

    def _reject(self, reason: str, now: float, watts: float) -> Sample:
        self._last = now
        return Sample(False, reason, 0, self.total_uwh, watts, False, imported_uwh=self.imported_uwh)

    def _skip(self, reason: str, reading: Reading) -> Sample:
        self.watts = reading.watts
        self.import_watts = reading.import_watts
        return Sample(False, reason, 0, self.total_uwh, reading.watts, False, imported_uwh=self.imported_uwh)


def _finite(value: float | None) -> bool:
    return value is None or math.isfinite(value)


def _register_delta(previous: int | None, current: int, wrap: int | None) -> tuple[int | None, str | None]:
    """The energy a register counted since ``previous``; None when it went down and did not wrap."""
    assert previous is not None
    if current >= previous:
        return current - previous, None
    if wrap and previous < wrap:
        return current + wrap - previous, "wrap"
    return None, "reset"
