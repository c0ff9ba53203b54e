from __future__ import annotations

import math

from prometheus_client import generate_latest

from heliogrid_agent.agent import Agent, local_day
from heliogrid_agent.config import parse_config
from heliogrid_agent.meter import UWH_PER_WH
from heliogrid_agent.reporter import Reporter
from heliogrid_agent.sensors import SimulatedInstallation
from heliogrid_agent.sensors.base import Reading, Sensor
from heliogrid_agent.store import Store


class Scripted(Sensor):
    def __init__(self, values):
        self.values = list(values)

    def read(self) -> Reading:
        value = self.values.pop(0)
        if isinstance(value, Exception):
            raise value
        return Reading(value)


def config(**meter):
    return parse_config(
        {
            "meter": {"sensor": "simulated", "interval_seconds": 5, **meter},
            "sensor": {
                "simulated": {
                    "panels": 4,
                    "panel_peak_watts": 250,
                    "clear_sky": True,
                    "noise": 0.0,
                    "house_watts": 100,
                    "seed": 1,
                }
            },
        }
    )


def test_agent_sells_simulated_kwh_and_the_chain_matches_its_counter(tmp_path, clock, fake_chain, account):
    """Hours of a sunny installation in well under a second: every whole kWh reaches the chain."""
    cfg = config(interval_seconds=60)
    store = Store(tmp_path / "agent.db")
    reporter = Reporter(fake_chain, store, account, expected_chain_id=1337, clock=clock)
    agent = Agent(cfg, SimulatedInstallation(cfg.sensor, clock), store, reporter, clock)
    for _ in range(4 * 60):  # 4 h at one sample a minute (each sample is an fsync'd commit)
        clock.advance(60)
        agent.sample_once()
        if agent.report_due.is_set():
            agent.report_due.clear()
            reporter.step()
    reporter.step()
    reporter.step()
    # 900 W export for 4 h, less the first interval (a baseline)
    assert agent.meter.total_wh == 3600 - 900 * 60 / 3600
    m = fake_chain.meter(account.address)
    assert m.credited_kwh == agent.meter.whole_kwh == 3
    # the last report went out when the counter passed 3 kWh, carrying the counter of that moment
    assert 3000 <= m.total_wh < 3002
    assert len(fake_chain.sent) == 3
    assert store.day_uwh(local_day(clock.time())) == store.total_uwh()


def test_bad_readings_are_logged_counted_and_never_credited(tmp_path, clock, caplog):
    cfg = config()
    store = Store(tmp_path / "agent.db")
    agent = Agent(cfg, Scripted([500.0, math.nan, -3.0, 5000.0, OSError("spi"), 360.0]), store, None, clock)
    for _ in range(6):
        clock.advance(5)
        agent.sample_once()
    assert agent.meter.total_uwh == round(360 * 5 / 3600 * UWH_PER_WH)
    text = generate_latest(agent.metrics.registry).decode()
    for reason in ("nan", "negative", "over_capacity", "sensor_error"):
        assert f'heliogrid_agent_rejected_readings_total{{reason="{reason}"}} 1.0' in text
    assert "rejected reading nan W: nan" in caplog.text
    assert "rejected reading 5000.0 W: over_capacity" in caplog.text


def test_counter_survives_a_restart_and_loses_at_most_one_interval(tmp_path, clock):
    cfg = config()
    store = Store(tmp_path / "agent.db")
    agent = Agent(cfg, Scripted([720.0] * 10), store, None, clock)
    for _ in range(10):
        clock.advance(5)
        agent.sample_once()
    before = agent.meter.total_uwh  # 9 intervals of 720 W x 5 s = 9 Wh
    store.close()  # the process dies here: no shutdown hook runs
    store2 = Store(tmp_path / "agent.db")
    agent2 = Agent(cfg, Scripted([720.0] * 3), store2, None, clock)
    assert agent2.meter.total_uwh == before == 9 * UWH_PER_WH
    for _ in range(3):
        clock.advance(5)
        agent2.sample_once()
    assert agent2.meter.total_uwh == before + 2 * UWH_PER_WH  # the first interval after a start is a baseline


def test_metrics_name_the_agents_state(tmp_path, clock):
    cfg = config()
    agent = Agent(cfg, Scripted([720.0, 720.0]), Store(tmp_path / "agent.db"), None, clock)
    for _ in range(2):
        clock.advance(5)
        agent.sample_once()
    text = generate_latest(agent.metrics.registry).decode()
    assert "heliogrid_agent_power_watts 720.0" in text
    assert "heliogrid_agent_exported_wh 1.0" in text
    assert 'heliogrid_agent_skipped_intervals_total{reason="baseline"} 1.0' in text


def test_agent_counts_and_stores_what_a_net_consuming_home_imports(tmp_path, clock):
    cfg = parse_config(
        {
            "meter": {"sensor": "simulated", "interval_seconds": 5},
            "sensor": {"simulated": {"clear_sky": True, "noise": 0.0, "house_watts": 1600}},  # 1 kW of panels
        }
    )
    store = Store(tmp_path / "agent.db")
    agent = Agent(cfg, SimulatedInstallation(cfg.sensor, clock), store, clock=clock)
    agent.sample_once()
    for _ in range(720):  # an hour
        clock.advance(5)
        agent.sample_once()
    assert store.imported_uwh() == agent.meter.imported_uwh == 600 * UWH_PER_WH
    assert store.total_uwh() == 0
    assert agent.status()["imported_wh"] == 600
    assert "heliogrid_agent_imported_wh 600.0" in generate_latest(agent.metrics.registry).decode()
    store.close()
    again = Agent(cfg, SimulatedInstallation(cfg.sensor, clock), Store(tmp_path / "agent.db"), clock=clock)
    assert again.meter.imported_uwh == 600 * UWH_PER_WH
