from __future__ import annotations

import pytest
from gpiozero import MCP3008
from gpiozero.pins.mock import MockSPIDevice

from heliogrid_agent.config import McpConfig, S0Config, SimulatedConfig, parse_config
from heliogrid_agent.meter import UWH_PER_WH, Meter
from heliogrid_agent.pins import make_pin_factory
from heliogrid_agent.sensors import AdcSensor, S0Sensor, SimulatedInstallation, make_sensor
from heliogrid_agent.sensors.simulated import day_fraction


def pulse(factory, pin: int, count: int, clock=None, every: float = 0.0) -> None:
    """An S0 output is open collector: each pulse pulls the pulled-up pin low, then releases it."""
    p = factory.pin(pin)
    for _ in range(count):
        if clock is not None:
            clock.advance(every)
        p.drive_low()
        p.drive_high()


@pytest.mark.parametrize(("impulses_per_kwh", "pulses", "expected_uwh"), [
    (1000, 1500, 1500 * UWH_PER_WH),       # 1 Wh per pulse
    (800, 1000, 1250 * UWH_PER_WH),        # 1.25 Wh per pulse
    (3200, 6400, 2000 * UWH_PER_WH),       # 0.3125 Wh per pulse
    (2000, 3, 1_500_000),                  # 0.5 Wh per pulse
])  # fmt: skip
def test_s0_pulses_give_exact_watt_hours(mock_factory, clock, impulses_per_kwh, pulses, expected_uwh):
    sensor = S0Sensor(S0Config(pin=17, impulses_per_kwh=impulses_per_kwh), clock, pin_factory=mock_factory)
    total = 0
    for chunk in (pulses // 3, pulses // 3, pulses - 2 * (pulses // 3)):
        pulse(mock_factory, 17, chunk)
        total += sensor.read().energy_uwh
    assert total == expected_uwh
    assert sensor.pulses == pulses


def test_s0_energy_never_drifts_when_a_pulse_is_not_a_whole_micro_watt_hour(mock_factory, clock):
    sensor = S0Sensor(S0Config(pin=17, impulses_per_kwh=3), clock, pin_factory=mock_factory)  # 333.33 Wh each
    total = 0
    for _ in range(3):
        pulse(mock_factory, 17, 1)
        total += sensor.read().energy_uwh
    assert total == 1000 * UWH_PER_WH


def test_s0_pulses_at_a_known_rate_through_the_meter_give_exact_energy(mock_factory, clock):
    # 1000 imp/kWh at one pulse every 3.6 s is 1000 W; sampled every 5 s for an hour -> exactly 1000 Wh
    sensor = S0Sensor(S0Config(pin=17, impulses_per_kwh=1000), clock, pin_factory=mock_factory)
    meter = Meter(capacity_watts=1000, tolerance_percent=10, max_gap_seconds=15)
    meter.add(sensor.read(), clock.monotonic())
    pulses_sent, elapsed = 0, 0.0
    for _ in range(720):  # 720 x 5 s = 3600 s
        elapsed += 5
        due = int(elapsed / 3.6 + 1e-9) - pulses_sent
        pulse(mock_factory, 17, due, clock, every=5 / max(due, 1))
        pulses_sent += due
        clock.advance(5 - (5 / max(due, 1)) * due)
        meter.add(sensor.read(), clock.monotonic())
    assert pulses_sent == 1000
    assert meter.total_uwh == 1000 * UWH_PER_WH


def test_s0_power_is_estimated_from_the_pulse_period(mock_factory, clock):
    sensor = S0Sensor(S0Config(pin=17, impulses_per_kwh=1000), clock, pin_factory=mock_factory)
    pulse(mock_factory, 17, 3, clock, every=2.0)  # 1 Wh every 2 s = 1800 W
    assert sensor.read().watts == pytest.approx(1800.0)
    clock.advance(10)  # overdue: at most 1 Wh in 10 s
    assert sensor.read().watts == pytest.approx(360.0)


def test_s0_ignores_the_release_edge(mock_factory, clock):
    sensor = S0Sensor(S0Config(pin=17), clock, pin_factory=mock_factory)
    mock_factory.pin(17).drive_low()
    assert sensor.pulses == 1
    mock_factory.pin(17).drive_high()
    assert sensor.pulses == 1


class MockMCP3008(MockSPIDevice):
    """The slave side of an MCP3008 on gpiozero's software SPI (clock 11, MOSI 10, MISO 9, CE0 8)."""

    def __init__(self, values):
        super().__init__(11, 10, 9, 8)
        self.values = values  # channel -> 0..1023

    def on_bit(self):
        if self.rx_bit == 12:  # 7 zero bits, start bit, single-ended bit, 3 channel bits received
            bits = self.rx_buf[-4:]
            channel = bits[1] << 2 | bits[2] << 1 | bits[3]
            self.tx_buf = [0, 0]  # don't care, null bit
            self.tx_word(self.values[channel], bits_per_word=10)


def test_adc_reading_is_scaled_to_watts(mock_factory):
    device = MockMCP3008({0: 0, 3: 512})
    config = McpConfig(chip="MCP3008", channel=3, scale_watts=2000.0, offset=0.0, samples=4)
    adc = MCP3008(channel=3, pin_factory=mock_factory)
    sensor = AdcSensor(config, device=adc)
    assert adc.raw_value == 512
    # gpiozero normalises a 10-bit code c to (2c + 1) / 2047
    assert sensor.read().watts == pytest.approx(2000 * 1025 / 2047)
    device.values[3] = 1023
    assert sensor.read().watts == pytest.approx(2000.0)
    sensor.close()
    device.close()


def test_adc_offset_below_zero_power_gives_a_negative_reading(mock_factory):
    device = MockMCP3008({0: 100})
    sensor = AdcSensor(
        McpConfig(channel=0, scale_watts=1000.0, offset=0.2, samples=1),
        device=MCP3008(channel=0, pin_factory=mock_factory),
    )
    assert sensor.read().watts < 0  # the meter rejects it as "negative"
    sensor.close()
    device.close()


def test_day_curve_is_zero_at_night_and_peaks_at_solar_noon():
    assert day_fraction(3.0, 6, 20) == 0
    assert day_fraction(6.0, 6, 20) == 0
    assert day_fraction(13.0, 6, 20) == pytest.approx(1.0)
    assert day_fraction(9.5, 6, 20) == pytest.approx(day_fraction(16.5, 6, 20))


def test_simulated_installation_exports_production_minus_house_within_capacity(clock):
    config = SimulatedConfig(panels=4, panel_peak_watts=250, noise=0.05, house_watts=150, seed=7)
    sim = SimulatedInstallation(config, clock)
    readings = []
    for _ in range(24 * 60):  # a simulated day, one reading a minute
        clock.advance(60)
        readings.append(sim.read())
    assert all(0 <= r.watts <= 1000 for r in readings)
    assert all(r.produced_watts <= 1000 for r in readings)
    assert max(r.watts for r in readings) > 700  # around noon
    night = [r for r in readings if r.produced_watts == 0]
    assert night
    assert all(r.watts == 0 for r in night)


def test_simulated_time_scale_turns_the_day_faster(clock):
    sim = SimulatedInstallation(SimulatedConfig(time_scale=3600), clock)
    start = sim.hour_of_day()
    clock.advance(6)  # six real seconds are six simulated hours
    assert (sim.hour_of_day() - start) % 24 == pytest.approx(6)


def test_simulated_day_in_one_real_minute_exports_a_plausible_energy(clock):
    """4 x 250 W, sunrise 6, sunset 20: a half sine over 14 h peaks at 1 kW: about 8.9 kWh minus the house."""
    config = SimulatedConfig(noise=0.0, house_watts=0.0)
    sim = SimulatedInstallation(config, clock)
    meter = Meter(capacity_watts=config.capacity_watts, max_gap_seconds=120)
    clock.advance(-(clock.time() % 86400))  # midnight UTC
    sim = SimulatedInstallation(config, clock)
    meter.add(sim.read(), clock.monotonic())
    for _ in range(24 * 60):
        clock.advance(60)
        meter.add(sim.read(), clock.monotonic())
    expected_wh = 1000 * 14 * 2 / 3.141592653589793
    assert meter.total_wh == pytest.approx(expected_wh, rel=0.01)


def test_make_sensor_picks_the_backend_named_in_the_config(mock_factory, clock):
    s0 = parse_config({"meter": {"sensor": "s0", "capacity_watts": 3000}, "sensor": {"s0": {"pin": 4}}})
    sim = parse_config({"meter": {"sensor": "simulated"}})
    sensor = make_sensor(s0, clock, mock_factory)
    assert isinstance(sensor, S0Sensor)
    sensor.close()
    assert isinstance(make_sensor(sim, clock), SimulatedInstallation)


def test_mock_pin_factory_is_selected_like_a_real_one():
    from gpiozero.pins.mock import MockFactory

    assert isinstance(make_pin_factory("mock"), MockFactory)
    assert make_pin_factory("default") is None
    with pytest.raises(ValueError, match=r"unknown pin factory 'x'"):
        make_pin_factory("x")


def test_s0_with_two_inputs_counts_import_and_export_apart(mock_factory, clock):
    sensor = S0Sensor(S0Config(pin=17, import_pin=27, impulses_per_kwh=1000), clock, pin_factory=mock_factory)
    pulse(mock_factory, 17, 40, clock, every=1.0)  # 40 Wh out
    pulse(mock_factory, 27, 7, clock, every=2.0)  # 7 Wh in, one every 2 s = 1800 W
    reading = sensor.read()
    assert (reading.energy_uwh, reading.import_uwh) == (40 * UWH_PER_WH, 7 * UWH_PER_WH)
    assert reading.import_watts == pytest.approx(1800.0)
    pulse(mock_factory, 27, 3)
    reading = sensor.read()
    assert (reading.energy_uwh, reading.import_uwh) == (0, 3 * UWH_PER_WH)
    assert (sensor.pulses, sensor.import_pulses) == (40, 10)
    sensor.close()


def test_s0_with_two_inputs_through_the_meter_keeps_both_counters_exact(mock_factory, clock):
    sensor = S0Sensor(S0Config(pin=17, import_pin=27, impulses_per_kwh=800), clock, pin_factory=mock_factory)
    meter = Meter(capacity_watts=3000, max_gap_seconds=15, max_import_watts=10000)
    meter.add(sensor.read(), clock.monotonic())
    for _ in range(10):
        pulse(mock_factory, 17, 3)
        pulse(mock_factory, 27, 5)
        clock.advance(5)
        assert meter.add(sensor.read(), clock.monotonic()).accepted
    assert meter.total_uwh == 30 * 1_250_000  # 800 imp/kWh: 1.25 Wh (1 250 000 µWh) a pulse
    assert meter.imported_uwh == 50 * 1_250_000


def test_s0_with_one_input_sees_no_import(mock_factory, clock):
    sensor = S0Sensor(S0Config(pin=17), clock, pin_factory=mock_factory)
    pulse(mock_factory, 17, 2)
    reading = sensor.read()
    assert reading.import_uwh is None
    assert reading.import_watts is None
    assert sensor.import_pulses is None
    sensor.close()


def test_s0_import_pulses_beyond_the_homes_fuse_are_rejected(mock_factory, clock):
    sensor = S0Sensor(S0Config(pin=17, import_pin=27, impulses_per_kwh=1000), clock, pin_factory=mock_factory)
    meter = Meter(capacity_watts=3000, max_gap_seconds=15, max_import_watts=1000, tolerance_percent=0)
    meter.add(sensor.read(), clock.monotonic())
    pulse(mock_factory, 27, 3)  # 3 Wh in 5 s is 2160 W, above the 1000 W limit
    clock.advance(5)
    sample = meter.add(sensor.read(), clock.monotonic())
    assert sample.reason == "over_capacity"
    assert meter.imported_uwh == 0


def simulated_day(clock, **options) -> tuple[int, int]:
    """Export and import (µWh) of a simulated home over one day from midnight, sampled every minute."""
    config = SimulatedConfig(noise=0.05, seed=3, **options)
    clock.advance(-(clock.time() % 86400))
    sim = SimulatedInstallation(config, clock)
    meter = Meter(capacity_watts=config.capacity_watts, max_gap_seconds=120)
    meter.add(sim.read(), clock.monotonic())
    for _ in range(24 * 60):
        clock.advance(60)
        meter.add(sim.read(), clock.monotonic())
    return meter.total_uwh, meter.imported_uwh


def test_a_household_with_a_small_load_is_a_net_producer(clock):
    exported, imported = simulated_day(clock, house_profile="household", house_watts=150)
    assert imported > 0  # the evening peak and the night still come from the grid
    assert exported > imported


def test_a_household_with_a_large_load_is_a_net_consumer(clock):
    exported, imported = simulated_day(clock, house_profile="household", house_watts=600)
    assert exported > 0  # around noon the panels still beat the load
    assert imported > exported


def test_the_household_profile_peaks_morning_and_evening_and_keeps_its_daily_mean():
    from heliogrid_agent.sensors.simulated import house_profile

    day = [house_profile("household", m / 60) for m in range(24 * 60)]
    assert sum(day) / len(day) == pytest.approx(1.0)
    assert house_profile("household", 19.0) > house_profile("household", 7.5) > house_profile("household", 3.0)
    assert house_profile("household", 13.0) < 1.0
    assert house_profile("flat", 19.0) == 1.0


def test_simulated_import_and_export_are_never_both_positive(clock):
    sim = SimulatedInstallation(SimulatedConfig(house_profile="household", house_watts=400, seed=5), clock)
    for _ in range(24 * 12):
        clock.advance(300)
        reading = sim.read()
        assert reading.watts >= 0
        assert reading.import_watts >= 0
        assert reading.watts == 0 or reading.import_watts == 0
        if reading.produced_watts == 0:  # at night everything the house uses is imported
            assert reading.watts == 0
            assert reading.import_watts > 0
