"""The sensor interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class Totals:
    """A meter's own cumulative registers, in watt-hours, as read (they may be NaN or garbage: the meter checks).

    ``resolution_wh`` is the register's step, allowed as quantisation when a delta is checked against the
    installation's capacity. ``wrap_wh`` is the value at which the register rolls over to 0 (None: it never
    does, so a total that goes down is a reset).
    """

    export_wh: float
    import_wh: float | None
    resolution_wh: float = 0.0
    wrap_wh: float | None = None


@dataclass(frozen=True)
class Reading:
    """One sample: exported (excess) power, and what the sensor can tell about imported energy.

    ``watts`` is the export power over the interval since the previous read. Counting sensors (S0) also give
    ``energy_uwh``, the exact energy counted since the previous read in micro-watt-hours, and
    ``resolution_uwh``, the energy of one count, which the meter allows as quantisation when it checks the
    reading against the installation's capacity.

    Import, when the sensor sees it: ``import_watts`` (power, integrated like export), or ``import_uwh`` (an
    exact count since the previous read, S0's import input). Both None: the sensor cannot see import (the ADC).

    Energy meters with their own registers (Modbus) give ``totals`` instead: the meter's cumulative export and
    import, which are the source of truth; ``watts`` is then only what the page shows.
    """

    watts: float
    energy_uwh: int | None = None
    resolution_uwh: int = 0
    produced_watts: float | None = None
    import_watts: float | None = None
    import_uwh: int | None = None
    totals: Totals | None = None


class MeterUnavailable(OSError):
    """The meter could not be read; ``reason`` (no_meter, timeout, modbus_error) labels the metric."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Sensor(ABC):
    """Something that reports exported power, read once per sampling interval."""

    name: str = "sensor"

    @abstractmethod
    def read(self) -> Reading:
        """Return the reading for the interval since the previous call (raise OSError on a hardware fault)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release pins and buses."""

    def __enter__(self) -> Sensor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
