"""A current/power transducer read through an MCP3xxx ADC on SPI (gpiozero's MCP3xxx classes)."""

from __future__ import annotations

from typing import Any

import gpiozero

from heliogrid_agent.config import McpConfig
from heliogrid_agent.sensors.base import Reading, Sensor


class AdcSensor(Sensor):
    """Watts = (ADC value - offset) * scale_watts, averaged over ``samples`` reads.

    The transducer must output a DC voltage proportional to the exported power (or to the RMS current at a
    known grid voltage), e.g. a hall-effect module or a CT with an RMS converter on the export feed. The
    value is gpiozero's normalised reading (0..1 of the ADC's reference voltage).
    """

    name = "mcp3xxx"

    def __init__(self, config: McpConfig, pin_factory: Any | None = None, device: Any | None = None) -> None:
        self._config = config
        if device is None:
            chip = getattr(gpiozero, config.chip)
            kwargs: dict[str, Any] = {"port": config.spi_port, "device": config.spi_device, "pin_factory": pin_factory}
            if not config.chip.endswith("1"):  # the single-channel chips take no channel argument
                kwargs["channel"] = config.channel
            device = chip(**kwargs)
        self._device = device

    def read(self) -> Reading:
        try:
            total = sum(float(self._device.value) for _ in range(self._config.samples))
        except (OSError, RuntimeError) as exc:
            raise OSError(f"{self._config.chip} read failed: {exc}") from exc
        value = total / self._config.samples
        return Reading(watts=(value - self._config.offset) * self._config.scale_watts)

    def close(self) -> None:
        self._device.close()
