"""Prometheus metrics, in a registry of the agent's own (so tests can build several agents)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class AgentMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        p = "heliogrid_agent_"
        self.power_watts = Gauge(p + "power_watts", "Exported (excess) power at the last accepted sample", registry=r)
        self.produced_watts = Gauge(p + "produced_watts", "Production at the last sample (simulated only)", registry=r)
        self.exported_wh = Gauge(p + "exported_wh", "Cumulative exported energy counted by this meter (Wh)", registry=r)
        self.today_wh = Gauge(p + "today_exported_wh", "Energy exported today, local time (Wh)", registry=r)
        self.imported_wh = Gauge(
            p + "imported_wh",
            "Cumulative imported energy counted by this meter (Wh; 0 if it cannot see import)",
            registry=r,
        )
        self.import_watts = Gauge(p + "import_watts", "Imported power at the last accepted sample", registry=r)
        self.sensor_errors = Counter(
            p + "sensor_errors",
            "Sensor reads that failed, by reason (no_meter, timeout, modbus_error, io_error)",
            ["reason"],
            registry=r,
        )
        self.meter_events = Counter(
            p + "meter_register_events",
            "Meter registers that wrapped (credited), were reset or jumped and were re-baselined (not credited)",
            ["event"],
            registry=r,
        )
        self.samples = Counter(p + "samples", "Samples accepted and credited", registry=r)
        self.rejected = Counter(
            p + "rejected_readings", "Readings rejected and never credited, by reason", ["reason"], registry=r
        )
        self.skipped = Counter(
            p + "skipped_intervals",
            "Intervals not credited: baseline after start, gap, clock step, meter reset",
            ["reason"],
            registry=r,
        )
        self.last_sample = Gauge(p + "last_sample_timestamp_seconds", "Wall time of the last sample", registry=r)
        self.reported_wh = Gauge(p + "onchain_total_wh", "The meter's cumulative total on chain (Wh)", registry=r)
        self.credited_kwh = Gauge(p + "onchain_credited_kwh", "kWh credited (sold) on chain", registry=r)
        self.transactions = Counter(
            p + "transactions",
            "Transactions by kind and outcome (signed, mined, reverted, dropped, send_error)",
            ["kind", "outcome"],
            registry=r,
        )
        self.pending = Gauge(p + "pending_transactions", "Transactions signed but not yet mined", registry=r)
        self.oldest_unconfirmed_report = Gauge(
            p + "oldest_unconfirmed_report_timestamp_seconds",
            "When the oldest report not yet mined was signed (wall time; 0 when every report is mined)",
            registry=r,
        )
        self.node_up = Gauge(p + "node_up", "1 when the local node answers RPC", registry=r)
        self.node_syncing = Gauge(p + "node_syncing", "1 while the local node is syncing", registry=r)
        self.block = Gauge(p + "node_block_number", "Latest block of the local node", registry=r)
        self.peers = Gauge(p + "node_peers", "Peers of the local node", registry=r)
        self.paused = Gauge(p + "selling_paused", "1 while selling is paused (button or UI)", registry=r)
        self.token_balance = Gauge(p + "token_balance", "Token balance in base units", ["account"], registry=r)
        self.market_paused = Gauge(
            p + "market_paused", "1 while the market contract is paused (nothing is sent)", registry=r
        )
        self.ether_balance = Gauge(
            p + "ether_balance_wei", "Ether of the meter's account, which pays gas (wei)", registry=r
        )
        self.transactions_left = Gauge(
            p + "gas_transactions_left", "Transactions the meter's ether pays at the gas limit and price", registry=r
        )
        self.gas_low = Gauge(
            p + "gas_low", "1 when gas_transactions_left is below chain.low_gas_transactions", registry=r
        )
        self.reverts_in_a_row = Gauge(
            p + "report_reverts_in_a_row", "Reports reverted in a row (the next one backs off)", registry=r
        )

        self.auto_buy_enabled = Gauge(
            p + "auto_buy_enabled", "1 while automatic buying is on (configuration and the owner's switch)", registry=r
        )
        self.auto_buy_bought_kwh = Gauge(p + "auto_buy_bought_kwh", "kWh bought automatically (mined)", registry=r)
        self.auto_buy_tokens_spent = Gauge(
            p + "auto_buy_tokens_spent", "Token base units paid by automatic purchases (mined)", registry=r
        )
        self.auto_buy_spent_today = Gauge(
            p + "auto_buy_spent_today",
            "Token base units of the automatic purchases signed since local midnight (mined or in flight)",
            registry=r,
        )
        self.auto_buy_daily_budget = Gauge(
            p + "auto_buy_daily_budget", "The owner's daily budget for automatic purchases (base units)", registry=r
        )
        self.auto_buy_uncovered_kwh = Gauge(
            p + "auto_buy_uncovered_kwh", "Whole kWh imported since the baseline and not bought yet", registry=r
        )

    def serve(self, address: str, port: int) -> Any:
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        return server
