"""A simulated home for the lab: panels x peak watts on a day curve, with noise, and a household's load."""

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


def _bump(hour: float, centre: float, width: float) -> float:
    distance = min(abs(hour - centre), 24 - abs(hour - centre))  # the day wraps at midnight
    return math.exp(-0.5 * (distance / width) ** 2)


def _household_shape(hour: float) -> float:
    # A base load (fridge, standby), a morning peak at 07:30 and a larger evening peak at 19:00.
    return 0.4 + 1.2 * _bump(hour, 7.5, 1.0) + 2.0 * _bump(hour, 19.0, 1.5)


# The shape's daily mean, so a profile times house_watts averages house_watts over the day.
_HOUSEHOLD_MEAN = sum(_household_shape(m / 60) for m in range(24 * 60)) / (24 * 60)


def house_profile(name: str, hour: float) -> float:
    """The house's load at ``hour`` as a multiple of its daily mean: 1 all day (flat), or a household's day."""
    if name == "flat":
        return 1.0
    if name == "household":
        return _household_shape(hour) / _HOUSEHOLD_MEAN
    raise ValueError(f"unknown house profile {name!r}; expected flat or household")


class SimulatedInstallation(Sensor):
    """Production on the day curve (clipped to capacity) against the house's load: the difference is exported
    when production is larger, imported otherwise. A small house_watts makes a net producer, a large one a net
    consumer (4 x 250 W panels with sunrise 6 and sunset 20 produce about 8.9 kWh a day)."""

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
        hour = self.hour_of_day()
        share = 1.0 if cfg.clear_sky else day_fraction(hour, cfg.sunrise_hour, cfg.sunset_hour)
        produced = cfg.capacity_watts * share * (1 + self._random.gauss(0, cfg.noise)) if share else 0.0
        produced = min(max(produced, 0.0), cfg.capacity_watts)
        load = cfg.house_watts * house_profile(cfg.house_profile, hour)
        house = max(load * (1 + self._random.gauss(0, cfg.noise)), 0.0)
        return Reading(
            watts=max(produced - house, 0.0), produced_watts=produced, import_watts=max(house - produced, 0.0)
        )
