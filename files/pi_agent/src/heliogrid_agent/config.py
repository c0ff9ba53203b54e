"""The agent's configuration: dataclasses, and a TOML loader that rejects bad input with clear errors.

Every error names the key (as ``section.key``), the value found and what was expected, and all of them are
raised before the agent touches the sensor, the database or the chain.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from decimal import Decimal, InvalidOperation
from importlib.resources import files
from pathlib import Path
from typing import Any

SENSORS = ("s0", "mcp3xxx", "simulated", "modbus")
# The MCP3xxx ADCs the agent reads, with their number of input channels. The pi_agent role checks its inputs
# against the same file (roles/pi_agent/vars/main.yml).
MCP_CHIPS: dict[str, int] = json.loads(files("heliogrid_agent").joinpath("mcp_chips.json").read_text())
PIN_FACTORIES = ("default", "lgpio", "rpigpio", "pigpio", "native", "mock")
# BCM numbers of the GPIO lines on the 40-pin header of every Pi since the B+.
GPIO_PINS = range(0, 28)
HOUSE_PROFILES = ("flat", "household")
LOG_TARGETS = ("auto", "journal", "stderr")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TOKEN_DECIMALS = 18  # EnergyToken is a plain OpenZeppelin ERC-20


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or holds a value the agent cannot use."""


@dataclass(frozen=True)
class S0Config:
    pin: int  # the export input
    import_pin: int | None = None  # the import input of a meter with two S0 outputs; None: export only
    impulses_per_kwh: int = 1000
    pull_up: bool = True  # S0 outputs are open collector: the pin idles high and a pulse pulls it low
    bounce_ms: float = 0.0


@dataclass(frozen=True)
class McpConfig:
    chip: str = "MCP3008"
    channel: int = 0
    scale_watts: float = 0.0  # watts at a full-scale reading (value 1.0 after the offset)
    offset: float = 0.0  # reading (0..1) at zero power
    samples: int = 8  # reads averaged per sample
    spi_port: int = 0
    spi_device: int = 0


@dataclass(frozen=True)
class SimulatedConfig:
    panels: int = 4
    panel_peak_watts: float = 250.0
    sunrise_hour: float = 6.0
    sunset_hour: float = 20.0
    noise: float = 0.05  # relative standard deviation of production and consumption
    house_watts: float = 150.0  # mean house consumption, subtracted from production
    house_profile: str = "flat"  # flat | household (morning and evening peaks); the daily mean is house_watts
    utc_offset_hours: float = 0.0
    time_scale: float = 1.0  # how fast the day curve turns (energy is always power x real time)
    clear_sky: bool = False  # True: noon all day (the lab, when it needs energy at any hour)
    seed: int | None = None

    @property
    def capacity_watts(self) -> float:
        return self.panels * self.panel_peak_watts


@dataclass(frozen=True)
class RegisterMap:
    """Where a Modbus meter keeps its cumulative import and export active energy and its power."""

    import_register: int
    export_register: int
    power_register: int | None = None  # None: the page shows no power
    data_type: str = "float32"  # float32 | uint32 | int32 | uint16
    word_order: str = "big"  # big: the high word first (Eastron's IEEE 754 floats)
    function: str = "input"  # input (code 04) | holding (code 03)
    energy_scale_wh: float = 1000.0  # Wh per register unit (1000: the register counts kWh)
    power_scale_watts: float = 1.0  # W per register unit
    export_power_negative: bool = True  # Eastron's power is import minus export: export reads negative
    resolution_wh: float = 10.0  # the register's step (0.01 kWh on an Eastron display)


# The Eastron SDM meters' input registers (function 04, IEEE 754 float32, high word first), as in Eastron's
# manuals: SDM120 "Active power" 30013 (0x000C); SDM630 / SDM72 "Total system power" 30053 (0x0034); both
# "Total import kWh" 30073 (0x0048) and "Total export kWh" 30075 (0x004A) (Eastron SDM72D-M manual V1.5 part 3,
# and the SDM120/SDM630 register lists of the Home Assistant and Tasmota integrations).
REGISTER_MAPS: dict[str, RegisterMap] = {
    "sdm120": RegisterMap(import_register=0x0048, export_register=0x004A, power_register=0x000C),
    "sdm630": RegisterMap(import_register=0x0048, export_register=0x004A, power_register=0x0034),
}
MODBUS_TRANSPORTS = ("rtu", "tcp")
MODBUS_DATA_TYPES = ("float32", "uint32", "int32", "uint16")
PARITIES = ("N", "E", "O")


@dataclass(frozen=True)
class ModbusConfig:
    map: str = "sdm120"  # sdm120 | sdm630 | custom ([sensor.modbus.registers])
    transport: str = "rtu"  # rtu: RS-485 through a serial adapter | tcp: Modbus TCP (a gateway or a TCP meter)
    device: str = ""  # rtu: the serial device, e.g. /dev/serial/by-id/usb-FTDI_..-if00-port0 or /dev/ttyUSB0
    baudrate: int = 9600  # rtu: as set on the meter (SDM120 default 2400; set 9600 on its menu)
    parity: str = "N"
    stopbits: int = 1
    host: str = ""  # tcp: host:port, e.g. 192.168.1.50:502
    unit_id: int = 1  # the meter's Modbus address, 1..247
    timeout_seconds: float = 1.0  # one request; a meter that takes longer is "timeout" for that sample
    retries: int = 1
    wrap_kwh: float = 0.0  # the value the energy registers roll over to 0 at; 0: never (a total that drops: reset)
    registers: RegisterMap | None = None  # map = "custom"

    @property
    def register_map(self) -> RegisterMap:
        if self.map == "custom":
            assert self.registers is not None
            return self.registers
        return REGISTER_MAPS[self.map]

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.host.rpartition(":") if _has_port(self.host) else (self.host, "", "502")
        return host.strip("[]"), int(port)

    @property
    def where(self) -> str:
        return f"{self.device} unit {self.unit_id}" if self.transport == "rtu" else f"{self.host} unit {self.unit_id}"


def _has_port(host: str) -> bool:
    return host.rpartition(":")[2].isdigit() and (host.count(":") == 1 or host.startswith("["))


@dataclass(frozen=True)
class MeterConfig:
    sensor: str
    interval_seconds: float = 5.0
    capacity_watts: float = 0.0  # derived from the simulated installation when not given
    tolerance_percent: float = 10.0
    max_gap_seconds: float = 0.0  # 0: three intervals
    max_import_watts: float = 25000.0  # the most the home can draw (its main fuse); import above it is rejected


@dataclass(frozen=True)
class ChainConfig:
    rpc_url: str = "http://127.0.0.1:8545"
    contracts_file: Path = Path("/etc/heliogrid-agent/contracts.json")
    keystore: Path = Path("/var/lib/heliogrid-agent/keystore.json")
    password_file: Path = Path("/etc/heliogrid-agent/password")
    gas_limit: int = 300_000
    max_gas_price_gwei: float = 100.0
    poll_seconds: float = 2.0
    resend_seconds: float = 30.0
    rpc_timeout_seconds: float = 5.0
    revert_backoff_seconds: float = 15.0  # wait after a reverted report, doubled after each revert in a row
    revert_backoff_max_seconds: float = 1800.0
    low_gas_transactions: int = 50  # gas_low when the account's ether pays fewer transactions than this
    enabled: bool = True


@dataclass(frozen=True)
class StoreConfig:
    path: Path = Path("/var/lib/heliogrid-agent/agent.db")


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = True
    listen_address: str = "127.0.0.1"
    port: int = 9720


@dataclass(frozen=True)
class UiConfig:
    enabled: bool = True
    listen_address: str = "0.0.0.0"  # noqa: S104 - the page is for the LAN; other clients are refused
    port: int = 8080
    recent_transactions: int = 10
    # Host headers served; "auto" is this machine's host names, localhost and the address a client connected to.
    allowed_hosts: tuple[str, ...] = ("auto",)
    # The owner's login code, created at first start when missing (0600); nothing that spends works without it.
    secret_file: Path = Path("/var/lib/heliogrid-agent/ui-secret")
    session_hours: float = 12.0
    socket_timeout_seconds: float = 10.0


@dataclass(frozen=True)
class BuyConfig:
    # The most the agent pays per kWh, in tokens (e.g. "1.5"); 0 turns buying off.
    max_price_per_kwh: Decimal = Decimal(0)
    quote_seconds: float = 60.0  # how long a confirmed price stays valid
    # Buy each whole kWh the home imports from the cheapest offers (the owner can switch it off on the page).
    auto: bool = False
    # The most the automatic purchases spend per local day (midnight to midnight), in tokens (e.g. "5").
    daily_budget: Decimal = Decimal(0)

    @property
    def max_price_units(self) -> int:
        """The cap in token base units."""
        return int(self.max_price_per_kwh * 10**TOKEN_DECIMALS)

    @property
    def daily_budget_units(self) -> int:
        return int(self.daily_budget * 10**TOKEN_DECIMALS)


@dataclass(frozen=True)
class SellConfig:
    # The price each credited kWh is offered at, in tokens (e.g. "1.5"); 0: offer nothing (minted at the tariff only).
    # The agent sets it on the market only when the meter's key is its owner's account.
    ask_price_per_kwh: Decimal = Decimal(0)

    @property
    def ask_price_units(self) -> int:
        """The ask price in token base units."""
        return int(self.ask_price_per_kwh * 10**TOKEN_DECIMALS)


@dataclass(frozen=True)
class GpioConfig:
    pin_factory: str = "default"
    led_pin: int | None = None  # blinks on each sale
    button_pin: int | None = None  # toggles selling on and off
    led_blinks: int = 3


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"
    target: str = "auto"


@dataclass(frozen=True)
class AgentConfig:
    meter: MeterConfig
    sensor: S0Config | McpConfig | SimulatedConfig | ModbusConfig
    chain: ChainConfig = field(default_factory=ChainConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    buy: BuyConfig = field(default_factory=BuyConfig)
    sell: SellConfig = field(default_factory=SellConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)
    log: LogConfig = field(default_factory=LogConfig)

    @property
    def capacity_watts(self) -> float:
        return self.meter.capacity_watts

    @property
    def max_gap_seconds(self) -> float:
        return self.meter.max_gap_seconds or 3 * self.meter.interval_seconds


SECTION_CLASSES: dict[str, type] = {
    "meter": MeterConfig,
    "chain": ChainConfig,
    "store": StoreConfig,
    "metrics": MetricsConfig,
    "ui": UiConfig,
    "buy": BuyConfig,
    "sell": SellConfig,
    "gpio": GpioConfig,
    "log": LogConfig,
}
SENSOR_CLASSES: dict[str, type] = {
    "s0": S0Config,
    "mcp3xxx": McpConfig,
    "simulated": SimulatedConfig,
    "modbus": ModbusConfig,
}


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate a TOML configuration file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    try:
        return parse_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_config(raw: dict[str, Any]) -> AgentConfig:
    """Validate a configuration mapping (the parsed TOML) into an AgentConfig."""
    allowed = {*SECTION_CLASSES, "sensor"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"unknown section [{key}]; expected one of {sorted(allowed)}")
    if "meter" not in raw:
        raise ConfigError(f"missing section [meter] (it names the sensor: meter.sensor = one of {', '.join(SENSORS)})")
    sections = {name: _build(cls, name, raw.get(name, {})) for name, cls in SECTION_CLASSES.items()}
    meter: MeterConfig = sections["meter"]
    if meter.sensor not in SENSORS:
        raise ConfigError(f"meter.sensor = {meter.sensor!r} is not a known sensor; expected one of {list(SENSORS)}")

    sensor_tables = raw.get("sensor", {})
    if not isinstance(sensor_tables, dict):
        raise ConfigError("[sensor] must be a table of tables such as [sensor.s0]")
    for name in sensor_tables:
        if name not in SENSORS:
            raise ConfigError(f"unknown sensor table [sensor.{name}]; expected one of {list(SENSORS)}")
    if meter.sensor != "simulated" and meter.sensor not in sensor_tables:
        raise ConfigError(f"meter.sensor = {meter.sensor!r} needs a [sensor.{meter.sensor}] table")
    sensor = _build(SENSOR_CLASSES[meter.sensor], f"sensor.{meter.sensor}", sensor_tables.get(meter.sensor, {}))

    gpio: GpioConfig = sections["gpio"]
    _check_ranges(meter, sensor, sections)
    if isinstance(sensor, SimulatedConfig):
        if meter.capacity_watts and meter.capacity_watts != sensor.capacity_watts:
            raise ConfigError(
                f"meter.capacity_watts = {meter.capacity_watts} contradicts the simulated installation "
                f"({sensor.panels} x {sensor.panel_peak_watts} W = {sensor.capacity_watts} W); leave it out"
            )
        meter = MeterConfig(**{**_asdict(meter), "capacity_watts": sensor.capacity_watts})
    elif meter.capacity_watts <= 0:
        raise ConfigError(
            f"meter.capacity_watts is required for sensor {meter.sensor!r}: the installation's peak export in watts "
            "(readings above it are rejected)"
        )
    _check_pins(sensor, gpio)
    return AgentConfig(meter=meter, sensor=sensor, **{k: v for k, v in sections.items() if k != "meter"})


def _asdict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _build(cls: type, section: str, table: Any) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"[{section}] must be a table, got {type(table).__name__}")
    known = {f.name: f for f in fields(cls)}
    for key in table:
        if key not in known:
            raise ConfigError(f"unknown key {section}.{key}; expected one of {sorted(known)}")
    values: dict[str, Any] = {}
    for name, f in known.items():
        required = f.default is MISSING and f.default_factory is MISSING
        if name not in table:
            if required:
                raise ConfigError(f"missing key {section}.{name}")
            continue
        values[name] = _coerce(f"{section}.{name}", table[name], f.type)
    return cls(**values)


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    kind = str(annotation)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key} = {value!r} must be true or false")
        return value
    if kind in ("int", "int | None"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} = {value!r} must be an integer")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{key} = {value!r} must be a finite number")
        return float(value)
    if kind == "Decimal":
        return token_amount(key, value)
    if kind == "tuple[str, ...]":
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError(f"{key} = {value!r} must be a list of non-empty strings")
        return tuple(v.strip().lower() for v in value)
    if kind == "RegisterMap | None":
        return _build(RegisterMap, key, value)
    if kind == "Path":
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key} = {value!r} must be a non-empty path string")
        return Path(value)
    if not isinstance(value, str):
        raise ConfigError(f"{key} = {value!r} must be a string")
    return value


def token_amount(key: str, value: Any) -> Decimal:
    """A token amount such as "1.5" (also from the page); ConfigError names ``key`` and the value when it is not one."""
    try:
        amount = Decimal(str(value)) if isinstance(value, int | float | str) and not isinstance(value, bool) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0 or amount != round(amount, TOKEN_DECIMALS):
        raise ConfigError(f'{key} = {value!r} must be a token amount >= 0 with at most 18 decimals, e.g. "1.5"')
    return amount


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key} = {value!r} must be greater than 0")


def _one_of(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key} = {value!r} is not valid; expected one of {list(choices)}")


def _port(key: str, value: int) -> None:
    if not 1 <= value <= 65535:
        raise ConfigError(f"{key} = {value} is not a TCP port; expected 1..65535")


def _check_ranges(meter: MeterConfig, sensor: Any, sections: dict[str, Any]) -> None:
    _positive("meter.interval_seconds", meter.interval_seconds)
    _positive("meter.max_import_watts", meter.max_import_watts)
    if meter.tolerance_percent < 0:
        raise ConfigError(f"meter.tolerance_percent = {meter.tolerance_percent} must be 0 or more")
    if meter.max_gap_seconds and meter.max_gap_seconds < meter.interval_seconds:
        raise ConfigError(
            f"meter.max_gap_seconds = {meter.max_gap_seconds} is shorter than meter.interval_seconds = "
            f"{meter.interval_seconds}; every interval would count as a gap"
        )
    if isinstance(sensor, S0Config):
        _positive("sensor.s0.impulses_per_kwh", sensor.impulses_per_kwh)
        if sensor.bounce_ms < 0:
            raise ConfigError(f"sensor.s0.bounce_ms = {sensor.bounce_ms} must be 0 or more")
    elif isinstance(sensor, McpConfig):
        _one_of("sensor.mcp3xxx.chip", sensor.chip, tuple(MCP_CHIPS))
        channels = MCP_CHIPS[sensor.chip]
        if not 0 <= sensor.channel < channels:
            raise ConfigError(
                f"sensor.mcp3xxx.channel = {sensor.channel} does not exist on the {sensor.chip}; "
                f"expected 0..{channels - 1}"
            )
        _positive("sensor.mcp3xxx.scale_watts", sensor.scale_watts)
        if not 0 <= sensor.offset < 1:
            raise ConfigError(f"sensor.mcp3xxx.offset = {sensor.offset} must be in [0, 1): a fraction of full scale")
        _positive("sensor.mcp3xxx.samples", sensor.samples)
    elif isinstance(sensor, SimulatedConfig):
        _positive("sensor.simulated.panels", sensor.panels)
        _positive("sensor.simulated.panel_peak_watts", sensor.panel_peak_watts)
        if not 0 <= sensor.sunrise_hour < sensor.sunset_hour <= 24:
            raise ConfigError(
                f"sensor.simulated.sunrise_hour = {sensor.sunrise_hour} and sunset_hour = {sensor.sunset_hour} "
                "must satisfy 0 <= sunrise < sunset <= 24"
            )
        if not 0 <= sensor.noise < 1:
            raise ConfigError(f"sensor.simulated.noise = {sensor.noise} must be in [0, 1)")
        if sensor.house_watts < 0:
            raise ConfigError(f"sensor.simulated.house_watts = {sensor.house_watts} must be 0 or more")
        _positive("sensor.simulated.time_scale", sensor.time_scale)
        _one_of("sensor.simulated.house_profile", sensor.house_profile, HOUSE_PROFILES)
    elif isinstance(sensor, ModbusConfig):
        _check_modbus(sensor)
    chain: ChainConfig = sections["chain"]
    if not chain.rpc_url.startswith(("http://", "https://")):
        raise ConfigError(f"chain.rpc_url = {chain.rpc_url!r} must be an http:// or https:// URL")
    for key in (
        "poll_seconds",
        "resend_seconds",
        "rpc_timeout_seconds",
        "max_gas_price_gwei",
        "revert_backoff_seconds",
        "revert_backoff_max_seconds",
    ):
        _positive(f"chain.{key}", getattr(chain, key))
    if chain.revert_backoff_max_seconds < chain.revert_backoff_seconds:
        raise ConfigError(
            f"chain.revert_backoff_max_seconds = {chain.revert_backoff_max_seconds} is below "
            f"chain.revert_backoff_seconds = {chain.revert_backoff_seconds}"
        )
    if chain.low_gas_transactions < 0:
        raise ConfigError(f"chain.low_gas_transactions = {chain.low_gas_transactions} must be 0 or more")
    if chain.gas_limit < 21_000:
        raise ConfigError(f"chain.gas_limit = {chain.gas_limit} is below the 21000 any transaction costs")
    _port("metrics.port", sections["metrics"].port)
    _port("ui.port", sections["ui"].port)
    ui: UiConfig = sections["ui"]
    if not ui.allowed_hosts:
        raise ConfigError('ui.allowed_hosts = [] would refuse every request; expected ["auto"] and/or host names')
    for key in ("session_hours", "socket_timeout_seconds"):
        _positive(f"ui.{key}", getattr(ui, key))
    buy: BuyConfig = sections["buy"]
    _positive("buy.quote_seconds", buy.quote_seconds)
    if buy.auto and buy.max_price_per_kwh <= 0:
        raise ConfigError(
            f"buy.auto = true needs buy.max_price_per_kwh > 0 (it is {buy.max_price_per_kwh}): the most an automatic "
            "purchase pays per kWh"
        )
    if buy.auto and buy.daily_budget <= 0:
        raise ConfigError(
            f"buy.auto = true needs buy.daily_budget > 0 (it is {buy.daily_budget}): the most automatic purchases "
            'spend per day, in tokens, e.g. "5"'
        )
    if sections["ui"].recent_transactions < 0:
        raise ConfigError(f"ui.recent_transactions = {sections['ui'].recent_transactions} must be 0 or more")
    if sections["metrics"].enabled and sections["ui"].enabled and sections["metrics"].port == sections["ui"].port:
        raise ConfigError(f"metrics.port and ui.port are both {sections['ui'].port}; they need different ports")
    gpio: GpioConfig = sections["gpio"]
    _one_of("gpio.pin_factory", gpio.pin_factory, PIN_FACTORIES)
    _positive("gpio.led_blinks", gpio.led_blinks)
    log: LogConfig = sections["log"]
    _one_of("log.level", log.level, LOG_LEVELS)
    _one_of("log.target", log.target, LOG_TARGETS)


def _check_modbus(sensor: ModbusConfig) -> None:
    key = "sensor.modbus"
    if sensor.map != "custom" and sensor.map not in REGISTER_MAPS:
        raise ConfigError(
            f"{key}.map = {sensor.map!r} is not a known register map; expected one of "
            f"{[*REGISTER_MAPS, 'custom']} (custom: give [sensor.modbus.registers])"
        )
    if sensor.map == "custom" and sensor.registers is None:
        raise ConfigError(f'{key}.map = "custom" needs a [{key}.registers] table (import_register, export_register)')
    if sensor.map != "custom" and sensor.registers is not None:
        raise ConfigError(f'[{key}.registers] is only read with {key}.map = "custom" (map is {sensor.map!r})')
    _one_of(f"{key}.transport", sensor.transport, MODBUS_TRANSPORTS)
    if not 1 <= sensor.unit_id <= 247:
        raise ConfigError(f"{key}.unit_id = {sensor.unit_id} is not a Modbus unit id; expected 1..247")
    if sensor.transport == "rtu":
        if not sensor.device.startswith("/dev/"):
            raise ConfigError(
                f"{key}.device = {sensor.device!r}: transport rtu needs the serial device of the RS-485 adapter, "
                "e.g. /dev/serial/by-id/usb-FTDI_...-if00-port0 or /dev/ttyUSB0"
            )
        if sensor.baudrate not in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200):
            raise ConfigError(
                f"{key}.baudrate = {sensor.baudrate} is not a Modbus baud rate; expected e.g. 2400 or 9600"
            )
        _one_of(f"{key}.parity", sensor.parity, PARITIES)
        if sensor.stopbits not in (1, 2):
            raise ConfigError(f"{key}.stopbits = {sensor.stopbits}; expected 1 or 2")
    else:
        host, _, port = sensor.host.rpartition(":")
        if not _has_port(sensor.host) or not host.strip("[]") or any(c.isspace() or c == "/" for c in host):
            raise ConfigError(
                f"{key}.host = {sensor.host!r}: transport tcp needs the meter's (or gateway's) host:port, "
                "e.g. 192.168.1.50:502 or [fd00::50]:502"
            )
        _port(f"{key}.host's port", int(port))
    _positive(f"{key}.timeout_seconds", sensor.timeout_seconds)
    if sensor.retries < 0:
        raise ConfigError(f"{key}.retries = {sensor.retries} must be 0 or more")
    if sensor.wrap_kwh < 0:
        raise ConfigError(f"{key}.wrap_kwh = {sensor.wrap_kwh} must be 0 (never) or the roll-over value in kWh")
    regs = sensor.register_map
    rkey = f"{key}.registers"
    for name in ("import_register", "export_register", "power_register"):
        value = getattr(regs, name)
        if value is not None and not 0 <= value <= 0xFFFF:
            raise ConfigError(f"{rkey}.{name} = {value} is not a register address; expected 0..65535")
    if regs.import_register == regs.export_register:
        raise ConfigError(f"{rkey}: import_register and export_register are both {regs.import_register}")
    _one_of(f"{rkey}.data_type", regs.data_type, MODBUS_DATA_TYPES)
    _one_of(f"{rkey}.word_order", regs.word_order, ("big", "little"))
    _one_of(f"{rkey}.function", regs.function, ("input", "holding"))
    _positive(f"{rkey}.energy_scale_wh", regs.energy_scale_wh)
    _positive(f"{rkey}.power_scale_watts", regs.power_scale_watts)
    if regs.resolution_wh < 0:
        raise ConfigError(f"{rkey}.resolution_wh = {regs.resolution_wh} must be 0 or more")


def _check_pins(sensor: Any, gpio: GpioConfig) -> None:
    used: dict[int, str] = {}
    if isinstance(sensor, McpConfig):
        # Hardware SPI0 (MOSI 10, MISO 9, SCLK 11, CE0 8, CE1 7) belongs to the ADC.
        used |= {10: "SPI MOSI", 9: "SPI MISO", 11: "SPI SCLK", 8: "SPI CE0", 7: "SPI CE1"}
    candidates = [("gpio.led_pin", gpio.led_pin), ("gpio.button_pin", gpio.button_pin)]
    if isinstance(sensor, S0Config):
        candidates[:0] = [("sensor.s0.pin", sensor.pin), ("sensor.s0.import_pin", sensor.import_pin)]
    for key, pin in candidates:
        if pin is None:
            continue
        if pin not in GPIO_PINS:
            raise ConfigError(f"{key} = {pin} is not a GPIO pin; expected a BCM number 0..27 (e.g. 17 for GPIO17)")
        if pin in used:
            raise ConfigError(f"{key} = {pin} is already used by {used[pin]}")
        used[pin] = key
