"""Sensors behind one interface; the backend is chosen by ``meter.sensor`` in the configuration.

As in gpiozero, every backend takes an optional ``pin_factory`` so tests drive the same classes as a Pi,
through gpiozero's MockFactory.
"""

from __future__ import annotations

from typing import Any

from heliogrid_agent.clock import Clock
from heliogrid_agent.config import AgentConfig, McpConfig, ModbusConfig, S0Config, SimulatedConfig
from heliogrid_agent.sensors.adc import AdcSensor
from heliogrid_agent.sensors.base import MeterUnavailable, Reading, Sensor, Totals
from heliogrid_agent.sensors.s0 import S0Sensor
from heliogrid_agent.sensors.simulated import SimulatedInstallation

__all__ = [
    "AdcSensor",
    "MeterUnavailable",
    "Reading",
    "S0Sensor",
    "Sensor",
    "SimulatedInstallation",
    "Totals",
    "make_sensor",
]


def make_sensor(config: AgentConfig, clock: Clock, pin_factory: Any | None = None) -> Sensor:
    sensor = config.sensor
    if isinstance(sensor, S0Config):
        return S0Sensor(sensor, clock, pin_factory=pin_factory)
    if isinstance(sensor, McpConfig):
        return AdcSensor(sensor, pin_factory=pin_factory)
    if isinstance(sensor, SimulatedConfig):
        return SimulatedInstallation(sensor, clock)
    if isinstance(sensor, ModbusConfig):
        from heliogrid_agent.sensors.modbus import ModbusSensor  # pymodbus only where a Modbus meter is read

        return ModbusSensor(sensor)
    raise TypeError(f"no sensor backend for {type(sensor).__name__}")
