"""The Modbus sensor against pymodbus's own server, serving an Eastron SDM120's input registers on 127.0.0.1.

Each test drives the whole agent (sensor, meter, store) on a fake clock and checks the exact energy credited.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import threading

import pytest
from prometheus_client import generate_latest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from heliogrid_agent.agent import Agent
from heliogrid_agent.config import REGISTER_MAPS, parse_config
from heliogrid_agent.meter import UWH_PER_WH
from heliogrid_agent.sensors import make_sensor
from heliogrid_agent.store import Store

pytestmark = pytest.mark.slow

SDM120 = REGISTER_MAPS["sdm120"]
HOUR = 3600.0


class FakeSdm120:
    """An SDM120 on Modbus TCP: input registers hold float32 (high word first) import, export and power."""

    def __init__(self, unit_id: int = 1) -> None:
        self.import_kwh = 0.0
        self.export_kwh = 0.0
        self.power_watts = 0.0
        self.delay = 0.0  # seconds before each answer: a slow bus
        self.unit_id = unit_id
        self.port = 0
        self._server: ModbusTcpServer | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-sdm120", daemon=True)
        self._thread.start()

    async def _answer(self, _fc, start, _address, _count, registers, _set_values):
        if self.delay:
            await asyncio.sleep(self.delay)
        for register, value in (
            (SDM120.import_register, self.import_kwh),
            (SDM120.export_register, self.export_kwh),
            (SDM120.power_register, self.power_watts),
        ):
            if start <= register < start + len(registers) - 1:
                registers[register - start : register - start + 2] = struct.unpack(">HH", struct.pack(">f", value))
        return None

    async def _start(self) -> int:
        input_registers = [SimData(0, count=0x100, values=0, datatype=DataType.REGISTERS)]
        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        device = SimDevice(self.unit_id, simdata=(bits, bits, input_registers, input_registers), action=self._answer)
        self._server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
        await self._server.serve_forever(background=True)
        return self._server.transport.sockets[0].getsockname()[1]

    def start(self) -> None:
        """Start serving (again on the same port after a stop)."""
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        """The meter is gone: the listener closes and every connection drops."""
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(10)
            self._server = None

    async def _cancel_pending(self) -> None:
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    def close(self) -> None:
        self.stop()
        asyncio.run_coroutine_threadsafe(self._cancel_pending(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def sdm():
    meter = FakeSdm120()
    meter.start()
    yield meter
    meter.close()


def modbus_config(sdm: FakeSdm120, tmp_path, **sensor):
    return parse_config(
        {
            "meter": {"sensor": "modbus", "capacity_watts": 3000, "interval_seconds": 5},
            "sensor": {
                "modbus": {
                    "map": "sdm120",
                    "transport": "tcp",
                    "host": f"127.0.0.1:{sdm.port}",
                    "unit_id": 1,
                    "timeout_seconds": 0.5,
                    "retries": 0,
                    **sensor,
                }
            },
            "store": {"path": str(tmp_path / "agent.db")},
            "ui": {"enabled": False},
            "metrics": {"enabled": False},
        }
    )


class Home:
    """An agent on a fake clock reading the fake meter, with its store on disk (so it can be restarted)."""

    def __init__(self, sdm: FakeSdm120, tmp_path, clock, **sensor) -> None:
        self.config = modbus_config(sdm, tmp_path, **sensor)
        self.clock = clock
        self.start()

    def start(self) -> None:
        self.store = Store(self.config.store.path)
        self.sensor = make_sensor(self.config, self.clock)
        self.agent = Agent(self.config, self.sensor, self.store, clock=self.clock)

    def stop(self) -> None:
        self.sensor.close()
        self.store.close()

    def sample(self, after: float = HOUR):
        self.clock.advance(after)
        return self.agent.sample_once()

    @property
    def exported_wh(self) -> float:
        return self.store.total_uwh() / UWH_PER_WH

    @property
    def imported_wh(self) -> float:
        return self.store.imported_uwh() / UWH_PER_WH

    def metric(self, name: str, **labels) -> float:
        text = generate_latest(self.agent.metrics.registry).decode()
        label = ",".join(f'{k}="{v}"' for k, v in labels.items())
        key = f"heliogrid_agent_{name}{{{label}}}" if label else f"heliogrid_agent_{name}"
        for line in text.splitlines():
            if line.startswith(key + " "):
                return float(line.split()[-1])
        return 0.0


@pytest.fixture
def home(sdm, tmp_path, clock):
    h = Home(sdm, tmp_path, clock)
    yield h
    h.stop()


def test_the_meters_own_register_difference_is_credited_not_its_power(sdm, home):
    sdm.export_kwh, sdm.import_kwh, sdm.power_watts = 1234.5, 50.2, -1500.0
    first = home.sample()
    assert first.reason == "baseline"
    assert home.exported_wh == 0
    # The power says 1500 W for an hour, the registers say 0.75 kWh: the registers win.
    sdm.export_kwh, sdm.import_kwh = 1235.25, 50.6
    sample = home.sample()
    assert sample.accepted
    assert home.agent.meter.watts == 1500.0
    assert home.exported_wh == 750
    assert home.imported_wh == 400
    assert home.store.register_baseline().export_uwh == 1_235_250 * UWH_PER_WH


def test_a_meter_that_disconnects_and_comes_back_is_credited_once_for_the_whole_outage(sdm, home, caplog):
    sdm.export_kwh = 10.0
    home.sample()
    sdm.stop()
    caplog.set_level(logging.WARNING, logger="heliogrid_agent")
    for _ in range(3):
        sample = home.sample(after=600)
        assert sample.reason == "sensor_error"
    assert home.metric("sensor_errors_total", reason="no_meter") == 3
    assert "sensor read failed (no_meter)" in caplog.text
    assert f"127.0.0.1:{sdm.port}" in caplog.text
    sdm.export_kwh = 11.3  # counted by the meter while the agent could not read it
    sdm.start()
    sample = home.sample(after=600)
    assert sample.accepted
    assert home.exported_wh == 1300
    home.sample()
    assert home.exported_wh == 1300


def test_garbage_registers_credit_nothing_and_keep_the_baseline(sdm, home):
    sdm.export_kwh, sdm.import_kwh = 20.0, 5.0
    home.sample()
    reasons = []
    for export, imported in ((math.nan, 5.1), (20.5, -3.0), (math.inf, 5.1), (3.0e38, 5.2)):
        sdm.export_kwh, sdm.import_kwh = export, imported
        reasons.append(home.sample(after=60).reason)
    assert reasons == ["nan", "negative", "nan", "over_capacity"]
    assert home.exported_wh == 0
    assert home.imported_wh == 0
    assert home.metric("rejected_readings_total", reason="nan") == 2
    # The next good reading credits everything the meter counted since the last good one, once.
    sdm.export_kwh, sdm.import_kwh = 20.9, 5.25
    assert home.sample().accepted
    assert home.exported_wh == 900
    assert home.imported_wh == 250


def test_a_jump_that_stays_is_rebaselined_after_three_readings_and_never_credited(sdm, home):
    sdm.export_kwh = 30.0
    home.sample()
    sdm.export_kwh = 9000.0  # a replaced meter: far beyond 3.3 kW for an hour
    assert [home.sample().reason for _ in range(3)] == ["over_capacity", "over_capacity", "reset"]
    assert home.metric("meter_register_events_total", event="rebaseline") == 1
    sdm.export_kwh = 9000.2
    home.sample()
    assert home.exported_wh == 200


def test_a_register_that_rolls_over_at_its_configured_wrap_is_credited_across_it(sdm, tmp_path, clock):
    home = Home(sdm, tmp_path, clock, wrap_kwh=100000)
    sdm.export_kwh = 99999.5
    home.sample()
    sdm.export_kwh = 0.3
    sample = home.sample()
    assert sample.accepted
    assert sample.event == "wrap"
    assert home.exported_wh == 800
    assert home.metric("meter_register_events_total", event="wrap") == 1
    home.stop()


def test_a_reset_meter_is_rebaselined_and_never_double_counted(sdm, home, caplog):
    sdm.export_kwh, sdm.import_kwh = 200.0, 40.0
    home.sample()
    sdm.export_kwh, sdm.import_kwh = 200.5, 40.1
    home.sample()
    assert home.exported_wh == 500
    caplog.set_level(logging.WARNING, logger="heliogrid_agent")
    sdm.export_kwh, sdm.import_kwh = 0.0, 0.0  # reset on the meter's menu
    sample = home.sample()
    assert sample.reason == "reset"
    assert "meter register reset" in caplog.text
    assert home.metric("meter_register_events_total", event="reset") == 1
    assert home.exported_wh == 500
    sdm.export_kwh, sdm.import_kwh = 0.4, 0.05
    home.sample()
    assert home.exported_wh == 900
    assert home.imported_wh == 150


def test_without_a_wrap_value_a_register_that_goes_down_is_a_reset(sdm, home):
    sdm.export_kwh = 99999.5
    home.sample()
    sdm.export_kwh = 0.3
    assert home.sample().reason == "reset"
    assert home.exported_wh == 0


def test_a_slow_bus_times_out_with_its_own_metric_and_loses_nothing(sdm, tmp_path, clock):
    home = Home(sdm, tmp_path, clock, timeout_seconds=0.2)
    sdm.export_kwh = 5.0
    home.sample()
    sdm.delay = 0.6
    sdm.export_kwh = 5.2
    assert home.sample().reason == "sensor_error"
    assert home.metric("sensor_errors_total", reason="timeout") == 1
    sdm.delay = 0.0
    sdm.export_kwh = 5.7
    assert home.sample().accepted
    assert home.exported_wh == 700
    home.stop()


def test_a_wrong_unit_id_is_no_answer_and_credits_nothing(sdm, tmp_path, clock):
    home = Home(sdm, tmp_path, clock, unit_id=7, timeout_seconds=0.2)
    sdm.export_kwh = 5.0
    sample = home.sample()
    assert sample.reason == "sensor_error"
    assert home.exported_wh == 0
    home.stop()


def test_a_restart_credits_what_the_meter_counted_since_the_persisted_baseline_exactly_once(sdm, tmp_path, clock):
    home = Home(sdm, tmp_path, clock)
    sdm.export_kwh, sdm.import_kwh = 500.0, 100.0
    home.sample()
    sdm.export_kwh, sdm.import_kwh = 500.7, 100.2
    home.sample()
    assert (home.exported_wh, home.imported_wh) == (700, 200)
    home.stop()  # the agent stops (or is killed: the baseline went to disk with the counters)

    sdm.export_kwh, sdm.import_kwh = 501.9, 100.5  # counted while the agent was down
    clock.advance(2 * HOUR)
    home.start()
    sample = home.sample(after=5)
    assert sample.accepted
    assert (home.exported_wh, home.imported_wh) == (1900, 500)
    home.stop()

    home.start()  # and again, with nothing new on the meter: nothing more
    home.sample(after=5)
    assert (home.exported_wh, home.imported_wh) == (1900, 500)
    home.stop()


def test_an_absent_serial_device_is_a_missing_meter_and_credits_nothing(tmp_path, clock, caplog):
    config = parse_config(
        {
            "meter": {"sensor": "modbus", "capacity_watts": 3000},
            "sensor": {"modbus": {"device": "/dev/serial/by-id/usb-heliogrid-test-unplugged-if00-port0"}},
            "store": {"path": str(tmp_path / "agent.db")},
        }
    )
    store = Store(config.store.path)
    agent = Agent(config, make_sensor(config, clock), store, clock=clock)
    caplog.set_level(logging.WARNING, logger="heliogrid_agent")
    assert agent.sample_once().reason == "sensor_error"
    assert "sensor read failed (no_meter): no Modbus meter at" in caplog.text
    assert "usb-heliogrid-test-unplugged-if00-port0 unit 1: cannot connect" in caplog.text
    assert store.total_uwh() == 0
    assert store.register_baseline() is None
    agent.sensor.close()
    store.close()
