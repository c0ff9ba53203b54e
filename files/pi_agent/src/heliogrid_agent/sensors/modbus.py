"""A bidirectional energy meter on Modbus (RTU over RS-485, or TCP): its own import and export registers."""

from __future__ import annotations

import logging
import math
from typing import Any

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from heliogrid_agent.config import ModbusConfig
from heliogrid_agent.sensors.base import MeterUnavailable, Reading, Sensor, Totals

# pymodbus logs each refused connection itself; the agent logs every fault once, with the meter and what it means.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

_DATA_TYPES = {
    "float32": ModbusSerialClient.DATATYPE.FLOAT32,
    "uint32": ModbusSerialClient.DATATYPE.UINT32,
    "int32": ModbusSerialClient.DATATYPE.INT32,
    "uint16": ModbusSerialClient.DATATYPE.UINT16,
}
_INTEGER_BITS = {"uint32": 32, "uint16": 16}  # unsigned registers roll over at 2**bits


def make_client(config: ModbusConfig) -> Any:
    """pymodbus's synchronous client for the configured wiring (not connected yet)."""
    if config.transport == "tcp":
        host, port = config.host_port
        return ModbusTcpClient(host, port=port, timeout=config.timeout_seconds, retries=config.retries)
    return ModbusSerialClient(
        config.device,
        baudrate=config.baudrate,
        parity=config.parity,
        stopbits=config.stopbits,
        timeout=config.timeout_seconds,
        retries=config.retries,
    )


class ModbusSensor(Sensor):
    """Reads the meter's cumulative import and export active energy and its instantaneous power.

    The totals go to the meter as they are (``Reading.totals``): it credits the registers' difference, so what is
    sold is what the meter counted. Every fault raises ``MeterUnavailable`` with a reason for the metric:
    no_meter (connection refused, serial device absent), timeout (no answer in time: a slow bus or a meter off
    the bus), modbus_error (an exception response: wrong map or unit id).
    """

    name = "modbus"

    def __init__(self, config: ModbusConfig, client: Any | None = None) -> None:
        self._config = config
        self._map = config.register_map
        self._client = client if client is not None else make_client(config)
        self._data_type = _DATA_TYPES[self._map.data_type]
        self._words = 1 if self._map.data_type == "uint16" else 2
        if config.wrap_kwh:
            self._wrap_wh: float | None = config.wrap_kwh * 1000
        elif self._map.data_type in _INTEGER_BITS:
            self._wrap_wh = 2 ** _INTEGER_BITS[self._map.data_type] * self._map.energy_scale_wh
        else:
            self._wrap_wh = None

    def read(self) -> Reading:
        if not self._client.connected and not self._client.connect():
            raise MeterUnavailable("no_meter", f"no Modbus meter at {self._config.where}: cannot connect")
        imported = self._register(self._map.import_register) * self._map.energy_scale_wh
        exported = self._register(self._map.export_register) * self._map.energy_scale_wh
        watts = 0.0
        if self._map.power_register is not None:
            power = self._register(self._map.power_register) * self._map.power_scale_watts
            # Only what the page shows: the credit comes from the energy registers.
            watts = max(-power if self._map.export_power_negative else power, 0.0) if math.isfinite(power) else 0.0
        return Reading(
            watts=watts,
            totals=Totals(
                export_wh=exported,
                import_wh=imported,
                resolution_wh=self._map.resolution_wh,
                wrap_wh=self._wrap_wh,
            ),
        )

    def _register(self, address: int) -> float:
        read = (
            self._client.read_input_registers if self._map.function == "input" else self._client.read_holding_registers
        )
        where = f"{self._config.where} register {address:#06x}"
        try:
            response = read(address, count=self._words, device_id=self._config.unit_id)
        except ConnectionException as exc:
            self._client.close()
            raise MeterUnavailable("no_meter", f"Modbus meter at {where} is gone: {exc}") from exc
        except ModbusIOException as exc:
            self._client.close()  # a fresh connection drops any late answer still on the bus
            raise MeterUnavailable(
                "timeout", f"Modbus meter at {where} did not answer within {self._config.timeout_seconds} s"
            ) from exc
        except (ModbusException, OSError) as exc:
            self._client.close()
            raise MeterUnavailable("no_meter", f"Modbus meter at {where}: {exc}") from exc
        if response.isError():
            raise MeterUnavailable("modbus_error", f"Modbus meter at {where} answered with an error: {response}")
        if len(response.registers) != self._words:
            raise MeterUnavailable("modbus_error", f"Modbus meter at {where} sent {len(response.registers)} words")
        return float(
            self._client.convert_from_registers(response.registers, self._data_type, word_order=self._map.word_order)
        )

    def close(self) -> None:
        self._client.close()
