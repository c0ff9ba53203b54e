"""Command line: ``heliogrid-agent run|check-config|keygen|ui-secret|address``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heliogrid_agent import __version__
from heliogrid_agent.chain import DeploymentError, Web3Chain, load_deployment
from heliogrid_agent.config import AgentConfig, ConfigError, load_config
from heliogrid_agent.keys import LIGHT_SCRYPT_N, KeystoreError, create_keystore, keystore_address, load_account
from heliogrid_agent.pins import HardwareError, make_pin_factory
from heliogrid_agent.ui_auth import SecretError, ensure_secret

DEFAULT_CONFIG = "/etc/heliogrid-agent/agent.toml"
log = logging.getLogger("heliogrid_agent")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="heliogrid-agent", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("-c", "--config", default=DEFAULT_CONFIG, help=f"TOML configuration (default {DEFAULT_CONFIG})")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="measure, report and serve the UI until stopped")
    sub.add_parser("check-config", help="validate the configuration and exit (0 when valid)")
    keygen = sub.add_parser("keygen", help="create the keystore and password file if the keystore is missing")
    keygen.add_argument("--keystore", help="default: chain.keystore from the configuration")
    keygen.add_argument("--password-file", help="default: chain.password_file from the configuration")
    keygen.add_argument("--scrypt-n", type=int, default=LIGHT_SCRYPT_N, help="scrypt cost (power of two)")
    secret = sub.add_parser(
        "ui-secret", help="create the page's login code file (0600) if it is missing; prints its path, never the code"
    )
    secret.add_argument("--file", help="default: ui.secret_file from the configuration")
    address = sub.add_parser("address", help="print the Pi's account address (from the keystore, no password)")
    address.add_argument("--keystore", help="default: chain.keystore from the configuration")
    args = parser.parse_args(argv)

    try:
        explicit = args.command == "address" or (args.command == "keygen" and args.password_file)
        standalone = (args.command == "ui-secret" and args.file) or (
            args.command in ("keygen", "address") and args.keystore and explicit
        )
        config = None if standalone else load_config(args.config)
        if args.command == "check-config":
            assert config is not None
            if config.chain.enabled:
                load_deployment(config.chain.contracts_file)
            print(f"{args.config}: valid ({config.meter.sensor} sensor, {config.meter.capacity_watts:g} W)")
            return 0
        if args.command == "address":
            print(keystore_address(args.keystore or config.chain.keystore))  # type: ignore[union-attr]
            return 0
        if args.command == "ui-secret":
            path = Path(args.file or config.ui.secret_file)  # type: ignore[union-attr]
            print(f"{'created' if ensure_secret(path) else 'exists'} {path}")
            return 0
        if args.command == "keygen":
            keystore = Path(args.keystore or config.chain.keystore)  # type: ignore[union-attr]
            password = Path(args.password_file or config.chain.password_file)  # type: ignore[union-attr]
            addr, created = create_keystore(keystore, password, args.scrypt_n)
            print(f"{'created' if created else 'exists'} {addr}")
            return 0
        assert config is not None
        return run(config)
    except (ConfigError, DeploymentError, KeystoreError, HardwareError, SecretError) as exc:
        print(f"heliogrid-agent: {exc}", file=sys.stderr)
        return 2


def run(config: AgentConfig, imported_uwh: Callable[[], int | None] | None = None) -> int:
    """Run the agent until stopped. ``imported_uwh`` gives the home's cumulative import (micro-Wh) for
    automatic buying; without it the meter's import as committed to the store is used."""
    from heliogrid_agent.agent import Agent
    from heliogrid_agent.askprice import AskPrice
    from heliogrid_agent.autobuy import AutoBuyer
    from heliogrid_agent.clock import SystemClock
    from heliogrid_agent.indicators import PauseButton, SaleLed
    from heliogrid_agent.logs import setup_logging
    from heliogrid_agent.metrics import AgentMetrics
    from heliogrid_agent.reporter import Reporter
    from heliogrid_agent.sensors import make_sensor
    from heliogrid_agent.store import Store
    from heliogrid_agent.ui import UiServer, prepare_secret

    setup_logging(config.log.level, config.log.target)
    # The deployment record and the key are read before the store is opened: a start they refuse creates no database.
    deployment = load_deployment(config.chain.contracts_file) if config.chain.enabled else None
    account = load_account(config.chain.keystore, config.chain.password_file) if config.chain.enabled else None
    clock = SystemClock()
    pin_factory = make_pin_factory(config.gpio.pin_factory)
    # The sensor's hardware too: a Pi whose GPIO cannot be used is told why, and keeps no half-started state.
    try:
        sensor = make_sensor(config, clock, pin_factory)
    except (ConfigError, HardwareError):
        raise
    except Exception as exc:  # gpiozero: pin in use, no such pin on this board, SPI not enabled...
        raise HardwareError(f"sensor {config.meter.sensor!r} could not be set up: {type(exc).__name__}: {exc}") from exc
    metrics = AgentMetrics()
    if config.ui.enabled:  # the page's login code too: a start that cannot keep one creates no database
        prepare_secret(config.ui.secret_file)
    # Closed in reverse order when the agent stops or a step below fails: the servers, the GPIO devices, the
    # sensor, then the store.
    with contextlib.ExitStack() as stack:
        store = Store(config.store.path)
        stack.callback(store.close)
        stack.callback(sensor.close)
        reporter = None
        if deployment is not None:
            chain = Web3Chain(config.chain.rpc_url, deployment, timeout=config.chain.rpc_timeout_seconds)
            reporter = Reporter(
                chain, store, account,
                expected_chain_id=deployment.chain_id,
                gas_limit=config.chain.gas_limit,
                max_gas_price_wei=int(config.chain.max_gas_price_gwei * 10**9),
                resend_seconds=config.chain.resend_seconds,
                revert_backoff_seconds=config.chain.revert_backoff_seconds,
                revert_backoff_max_seconds=config.chain.revert_backoff_max_seconds,
                low_gas_transactions=config.chain.low_gas_transactions,
                max_buy_price_per_kwh=config.buy.max_price_units,
                clock=clock, metrics=metrics,
            )  # fmt: skip
            AutoBuyer(reporter, available=config.buy.auto, daily_budget=config.buy.daily_budget_units)
            AskPrice(reporter, configured=config.sell.ask_price_units)
        agent = Agent(config, sensor, store, reporter, clock, metrics, imported_uwh=imported_uwh)
        if config.gpio.led_pin is not None and reporter is not None:
            led = SaleLed(config.gpio.led_pin, config.gpio.led_blinks, pin_factory)
            reporter.on_sale = led.sale
            stack.callback(led.close)
        if config.gpio.button_pin is not None:
            stack.callback(PauseButton(config.gpio.button_pin, agent.toggle_selling, pin_factory).close)
        if config.metrics.enabled:
            stack.callback(_shut_down, metrics.serve(config.metrics.listen_address, config.metrics.port))
        if config.ui.enabled:
            ui = UiServer(
                agent, config.ui.listen_address, config.ui.port,
                secret_file=config.ui.secret_file,
                allowed_hosts=config.ui.allowed_hosts,
                session_hours=config.ui.session_hours,
                quote_seconds=config.buy.quote_seconds,
                timeout=config.ui.socket_timeout_seconds,
            ).start()  # fmt: skip
            stack.callback(_shut_down, ui.httpd)

        def _stop(signum: int, _frame: Any) -> None:
            log.info("stopping on signal %s", signal.Signals(signum).name, extra={"event": "stop"})
            agent._stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        log.info(
            "started: %s sensor, %s W capacity, counter %s Wh, account %s",
            config.meter.sensor, config.meter.capacity_watts, agent.meter.total_wh,
            reporter.address if reporter else "-", extra={"event": "start"},
        )  # fmt: skip
        agent.start()
        stack.callback(agent.stop)
        agent.wait()
    return 0


def _shut_down(server: Any) -> None:
    server.shutdown()
    server.server_close()
