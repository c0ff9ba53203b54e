"""The sensor interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class Reading:
    """One sample of exported (excess) power.

    ``watts`` is the export power over the interval since the previous read. Counting sensors (S0) also give
    ``energy_uwh``, the exact energy counted since the previous read in micro-watt-hours, and
    ``resolution_uwh``, the energy of one count, which the meter allows as quantisation when it checks the
    reading against the installation's capacity.
    """

    watts: float
    energy_uwh: int | None = None
    resolution_uwh: int = 0
    produced_watts: float | None = None


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
