"""A simulated solar installation for the lab: panels x peak watts on a day curve, with noise and a house."""

from __future__ import annotations

import math
import random

from heliogrid_agent.clock import Clock
from heliogrid_agent.config import SimulatedConfig
from heliogrid_agent.sensors.base import Reading, Sensor


def day_fraction(hour: float, sunrise: float, sunset: float) -> float:
    """Share of peak output at ``hour``: a half sine between sunrise and sunset, 0 at night."""
    if not sunrise < hour < sunset:
        return 0.0
    return math.sin(math.pi * (hour - sunrise) / (sunset - sunrise))


class SimulatedInstallation(Sensor):
    """Export = production on the day curve (clipped to capacity) minus house consumption, never below 0."""

    name = "simulated"

    def __init__(self, config: SimulatedConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._random = random.Random(config.seed)
        self._origin = clock.time()

    @property
    def capacity_watts(self) -> float:
        return self._config.capacity_watts

    def hour_of_day(self) -> float:
        now = self._clock.time()
        simulated = self._origin + (now - self._origin) * self._config.time_scale
        return ((simulated + self._config.utc_offset_hours * 3600) % 86400) / 3600

    def read(self) -> Reading:
        cfg = self._config
        share = 1.0 if cfg.clear_sky else day_fraction(self.hour_of_day(), cfg.sunrise_hour, cfg.sunset_hour)
        produced = cfg.capacity_watts * share * (1 + self._random.gauss(0, cfg.noise)) if share else 0.0
        produced = min(max(produced, 0.0), cfg.capacity_watts)
        house = max(cfg.house_watts * (1 + self._random.gauss(0, cfg.noise)), 0.0)
        return Reading(watts=max(produced - house, 0.0), produced_watts=produced)
