from __future__ import annotations

import math

import pytest

from heliogrid_agent.meter import UWH_PER_KWH, UWH_PER_WH, Baseline, Meter
from heliogrid_agent.sensors.base import Reading, Totals


def run(meter: Meter, watts: float, seconds: float, interval: float, start: float = 0.0) -> float:
    """Feed a constant power for ``seconds`` (after a baseline sample at ``start``); returns the end time."""
    t = start
    meter.add(Reading(watts), t)
    for _ in range(round(seconds / interval)):
        t += interval
        meter.add(Reading(watts), t)
    return t


def test_constant_power_for_an_hour_integrates_to_its_watt_hours():
    meter = Meter(capacity_watts=1000)
    run(meter, 800.0, 3600, 5.0)
    # 800 W x 5 s is 1111111.1 µWh: the fractions are carried, not rounded away each sample
    assert abs(meter.total_uwh - 800 * UWH_PER_WH) <= 1


def test_integration_uses_the_real_interval_lengths():
    meter = Meter(capacity_watts=1000, max_gap_seconds=100)
    meter.add(Reading(0), 0.0)
    meter.add(Reading(360.0), 10.0)  # 360 W over 10 s = 1 Wh
    meter.add(Reading(720.0), 15.0)  # 720 W over 5 s = 1 Wh
    assert meter.total_uwh == 2 * UWH_PER_WH


def test_first_sample_after_start_is_only_a_baseline():
    meter = Meter(capacity_watts=1000, total_uwh=5 * UWH_PER_WH)
    sample = meter.add(Reading(900.0), 100.0)
    assert (sample.accepted, sample.reason, sample.delta_uwh) == (False, "baseline", 0)
    assert meter.total_uwh == 5 * UWH_PER_WH


def test_kwh_boundary_is_crossed_exactly_once_at_1000_wh():
    meter = Meter(capacity_watts=3600, max_gap_seconds=10)
    meter.add(Reading(0), 0.0)
    crossings = []
    t = 0.0
    for _ in range(999):  # 3600 W for 1 s = exactly 1 Wh per sample
        t += 1
        crossings.append(meter.add(Reading(3600.0), t).crossed_kwh)
    assert meter.total_uwh == 999 * UWH_PER_WH
    assert not any(crossings)
    t += 1
    assert meter.add(Reading(3600.0), t).crossed_kwh
    assert meter.total_uwh == UWH_PER_KWH
    assert meter.whole_kwh == 1
    t += 1
    assert not meter.add(Reading(3600.0), t).crossed_kwh


def test_one_micro_watt_hour_short_of_a_kwh_is_not_a_kwh():
    meter = Meter(capacity_watts=1000, total_uwh=UWH_PER_KWH - 1)
    assert meter.whole_kwh == 0
    meter.add(Reading(0), 0.0)
    sample = meter.add(Reading(0.0036), 1.0)  # 0.0036 W for 1 s = 1 µWh
    assert sample.crossed_kwh
    assert meter.whole_kwh == 1


@pytest.mark.parametrize(
    ("watts", "reason"),
    [(math.nan, "nan"), (math.inf, "nan"), (-math.inf, "nan"), (-0.5, "negative"), (1100.01, "over_capacity")],
)
def test_bad_reading_credits_nothing(watts, reason):
    meter = Meter(capacity_watts=1000, tolerance_percent=10)
    meter.add(Reading(500.0), 0.0)
    sample = meter.add(Reading(watts), 5.0)
    assert (sample.accepted, sample.reason, sample.bad, sample.delta_uwh) == (False, reason, True, 0)
    assert meter.total_uwh == 0


def test_reading_at_capacity_plus_tolerance_is_accepted():
    meter = Meter(capacity_watts=1000, tolerance_percent=10)
    meter.add(Reading(0), 0.0)
    assert meter.add(Reading(1100.0), 3.6).accepted


def test_interval_of_a_bad_reading_is_lost_not_guessed():
    meter = Meter(capacity_watts=1000)
    meter.add(Reading(360.0), 0.0)
    meter.add(Reading(360.0), 10.0)  # +1 Wh
    meter.add(Reading(math.nan), 20.0)  # the interval 10..20 is lost
    meter.add(Reading(360.0), 30.0)  # +1 Wh for 20..30 only
    assert meter.total_uwh == 2 * UWH_PER_WH


def test_silence_longer_than_max_gap_is_not_credited():
    meter = Meter(capacity_watts=1000, max_gap_seconds=15)
    meter.add(Reading(1000.0), 0.0)
    sample = meter.add(Reading(1000.0), 3600.0)
    assert (sample.reason, meter.total_uwh) == ("gap", 0)
    meter.add(Reading(360.0), 3610.0)
    assert meter.total_uwh == UWH_PER_WH


def test_clock_going_backwards_is_not_credited():
    meter = Meter(capacity_watts=1000)
    meter.add(Reading(100.0), 10.0)
    assert meter.add(Reading(100.0), 9.0).reason == "clock"
    assert meter.total_uwh == 0


def test_counted_energy_is_credited_exactly():
    meter = Meter(capacity_watts=4000)
    meter.add(Reading(0, energy_uwh=0), 0.0)
    meter.add(Reading(1000.0, energy_uwh=1_250_000, resolution_uwh=1_250_000), 5.0)
    assert meter.total_uwh == 1_250_000


def test_counted_energy_beyond_capacity_is_rejected_but_one_count_of_quantisation_is_not():
    meter = Meter(capacity_watts=1000, tolerance_percent=0)
    meter.add(Reading(0, energy_uwh=0), 0.0)
    # 1 s at 1000 W is 277.8 mWh: a single 1 Wh pulse landing in that second is quantisation, not a fault
    assert meter.add(Reading(0, energy_uwh=UWH_PER_WH, resolution_uwh=UWH_PER_WH), 1.0).accepted
    # ...but 3 Wh in one second is 10.8 kW from a 1 kW installation
    sample = meter.add(Reading(0, energy_uwh=3 * UWH_PER_WH, resolution_uwh=UWH_PER_WH), 2.0)
    assert (sample.accepted, sample.reason) == (False, "over_capacity")
    assert meter.total_uwh == UWH_PER_WH


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match=r"capacity_watts = 0 must be greater than 0"):
        Meter(capacity_watts=0)


def totals(export_kwh: float, import_kwh: float | None = 0.0, wrap_kwh: float | None = None) -> Reading:
    return Reading(
        0.0,
        totals=Totals(
            export_wh=export_kwh * 1000,
            import_wh=None if import_kwh is None else import_kwh * 1000,
            resolution_wh=10,
            wrap_wh=None if wrap_kwh is None else wrap_kwh * 1000,
        ),
    )


def test_meter_registers_credit_their_difference_and_keep_the_baseline_on_a_bad_reading():
    meter = Meter(capacity_watts=3000, max_gap_seconds=15)
    assert meter.add(totals(100.0, 10.0), 0.0).reason == "baseline"
    assert meter.add(totals(math.nan, 10.0), 3600.0).reason == "nan"
    sample = meter.add(totals(101.5, 12.25), 7200.0)  # two hours after the baseline, one after the NaN
    assert (sample.delta_uwh, sample.import_delta_uwh) == (1500 * UWH_PER_WH, 2250 * UWH_PER_WH)
    assert sample.baseline_changed
    assert meter.baseline == Baseline(101_500 * UWH_PER_WH, 12_250 * UWH_PER_WH, 7200.0)


def test_meter_register_delta_above_capacity_since_the_baseline_is_rejected():
    meter = Meter(capacity_watts=1000, tolerance_percent=0, max_gap_seconds=15)
    meter.add(totals(5.0), 0.0)
    assert meter.add(totals(6.5), 3600.0).reason == "over_capacity"  # 1.5 kWh in an hour from 1 kW
    assert meter.add(totals(6.5), 5400.0).accepted  # 1.5 kWh in 1.5 h is possible
    assert meter.total_uwh == 1500 * UWH_PER_WH


def test_meter_register_roll_over_with_an_implausible_delta_is_a_reset_not_a_credit():
    meter = Meter(capacity_watts=3000, max_gap_seconds=15)
    meter.add(totals(500.0, wrap_kwh=100000), 0.0)
    sample = meter.add(totals(0.2, wrap_kwh=100000), 3600.0)  # across the wrap this would be 99 500 kWh
    assert (sample.reason, sample.event) == ("reset", "reset")
    assert meter.total_uwh == 0


def test_meter_an_import_register_reset_rebaselines_both_registers():
    meter = Meter(capacity_watts=3000, max_gap_seconds=15)
    meter.add(totals(10.0, 50.0), 0.0)
    assert meter.add(totals(10.5, 0.0), 3600.0).reason == "reset"
    meter.add(totals(10.7, 0.3), 7200.0)
    assert (meter.total_uwh, meter.imported_uwh) == (200 * UWH_PER_WH, 300 * UWH_PER_WH)


def test_meter_import_power_is_integrated_and_rejected_above_the_import_limit():
    meter = Meter(capacity_watts=1000, tolerance_percent=0, max_gap_seconds=15, max_import_watts=2000)
    meter.add(Reading(0.0, import_watts=1800.0), 0.0)
    for t in range(5, 3605, 5):
        assert meter.add(Reading(0.0, import_watts=1800.0), float(t)).accepted
    assert meter.imported_uwh == 1800 * UWH_PER_WH
    assert meter.add(Reading(0.0, import_watts=2100.0), 3610.0).reason == "over_capacity"
    assert meter.add(Reading(0.0, import_watts=-1.0), 3615.0).reason == "negative"
