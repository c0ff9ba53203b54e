from __future__ import annotations

from pathlib import Path

import pytest

from heliogrid_agent.config import ConfigError, McpConfig, S0Config, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "agent.toml"


def s0(**sensor) -> dict:
    return {"meter": {"sensor": "s0", "capacity_watts": 3000}, "sensor": {"s0": {"pin": 17, **sensor}}}


def test_example_config_is_valid():
    config = load_config(EXAMPLE)
    assert config.meter.sensor == "simulated"
    assert config.meter.capacity_watts == 1000  # 4 x 250 W, derived
    assert config.max_gap_seconds == 15


def test_s0_config_loads_with_defaults():
    config = parse_config(s0())
    assert isinstance(config.sensor, S0Config)
    assert config.sensor.impulses_per_kwh == 1000
    assert config.chain.rpc_url == "http://127.0.0.1:8545"


def test_unknown_sensor_is_named_with_the_choices():
    with pytest.raises(ConfigError, match=r"meter.sensor = 'dht22' is not a known sensor; expected one of \['s0'"):
        parse_config({"meter": {"sensor": "dht22"}})


@pytest.mark.parametrize("pin", [28, -1, 40])
def test_pin_outside_the_gpio_header_is_rejected(pin):
    with pytest.raises(ConfigError, match=rf"sensor.s0.pin = {pin} is not a GPIO pin; expected a BCM number 0..27"):
        parse_config(s0(pin=pin))


def test_pin_given_as_text_is_rejected():
    with pytest.raises(ConfigError, match=r"sensor.s0.pin = 'GPIO17' must be an integer"):
        parse_config(s0(pin="GPIO17"))


def test_missing_sensor_pin_is_reported():
    with pytest.raises(ConfigError, match=r"missing key sensor.s0.pin"):
        parse_config({"meter": {"sensor": "s0", "capacity_watts": 3000}, "sensor": {"s0": {}}})


def test_missing_meter_section_is_reported():
    with pytest.raises(ConfigError, match=r"missing section \[meter\]"):
        parse_config({"chain": {}})


def test_missing_sensor_table_is_reported():
    with pytest.raises(ConfigError, match=r"needs a \[sensor.s0\] table"):
        parse_config({"meter": {"sensor": "s0", "capacity_watts": 3000}})


def test_capacity_is_required_for_a_real_sensor():
    with pytest.raises(ConfigError, match=r"meter.capacity_watts is required for sensor 's0'"):
        parse_config({"meter": {"sensor": "s0"}, "sensor": {"s0": {"pin": 17}}})


def test_unknown_key_is_named_with_the_known_keys():
    with pytest.raises(ConfigError, match=r"unknown key sensor.s0.impulses; expected one of"):
        parse_config(s0(impulses=800))


def test_unknown_section_is_rejected():
    with pytest.raises(ConfigError, match=r"unknown section \[metering\]"):
        parse_config({"meter": {"sensor": "simulated"}, "metering": {}})


def test_led_on_the_s0_pin_is_a_conflict():
    raw = s0()
    raw["gpio"] = {"led_pin": 17}
    with pytest.raises(ConfigError, match=r"gpio.led_pin = 17 is already used by sensor.s0.pin"):
        parse_config(raw)


def test_button_on_an_spi_pin_is_a_conflict_for_the_adc():
    raw = {
        "meter": {"sensor": "mcp3xxx", "capacity_watts": 3000},
        "sensor": {"mcp3xxx": {"scale_watts": 3300}},
        "gpio": {"button_pin": 11},
    }
    with pytest.raises(ConfigError, match=r"gpio.button_pin = 11 is already used by SPI SCLK"):
        parse_config(raw)


def test_adc_channel_must_exist_on_the_chip():
    raw = {
        "meter": {"sensor": "mcp3xxx", "capacity_watts": 3000},
        "sensor": {"mcp3xxx": {"chip": "MCP3004", "channel": 5, "scale_watts": 3300}},
    }
    with pytest.raises(ConfigError, match=r"channel = 5 does not exist on the MCP3004; expected 0..3"):
        parse_config(raw)


def test_adc_config_loads():
    raw = {
        "meter": {"sensor": "mcp3xxx", "capacity_watts": 3000},
        "sensor": {"mcp3xxx": {"chip": "MCP3208", "channel": 7, "scale_watts": 3300}},
    }
    assert isinstance(parse_config(raw).sensor, McpConfig)


def test_simulated_capacity_contradiction_is_rejected():
    with pytest.raises(ConfigError, match=r"contradicts the simulated installation \(4 x 250.0 W = 1000.0 W\)"):
        parse_config({"meter": {"sensor": "simulated", "capacity_watts": 5000}})


def test_wrong_types_are_reported_with_the_value():
    with pytest.raises(ConfigError, match=r"meter.interval_seconds = 'fast' must be a finite number"):
        parse_config({"meter": {"sensor": "simulated", "interval_seconds": "fast"}})
    with pytest.raises(ConfigError, match=r"ui.enabled = 1 must be true or false"):
        parse_config({"meter": {"sensor": "simulated"}, "ui": {"enabled": 1}})


def test_non_http_rpc_url_is_rejected():
    with pytest.raises(ConfigError, match=r"chain.rpc_url = 'ws://127.0.0.1:8546' must be an http"):
        parse_config({"meter": {"sensor": "simulated"}, "chain": {"rpc_url": "ws://127.0.0.1:8546"}})


def test_port_out_of_range_is_rejected():
    with pytest.raises(ConfigError, match=r"ui.port = 70000 is not a TCP port"):
        parse_config({"meter": {"sensor": "simulated"}, "ui": {"port": 70000}})


def test_unknown_pin_factory_is_rejected():
    with pytest.raises(ConfigError, match=r"gpio.pin_factory = 'wiringpi' is not valid"):
        parse_config({"meter": {"sensor": "simulated"}, "gpio": {"pin_factory": "wiringpi"}})


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[meter\n")
    with pytest.raises(ConfigError, match=r"bad.toml is not valid TOML"):
        load_config(bad)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[meter]\nsensor = "x"\n')
    with pytest.raises(ConfigError, match=r"wrong.toml: meter.sensor = 'x'"):
        load_config(wrong)


def modbus(**sensor) -> dict:
    table = {"map": "sdm120", "device": "/dev/ttyUSB0", **sensor}
    return {"meter": {"sensor": "modbus", "capacity_watts": 3000}, "sensor": {"modbus": table}}


def test_modbus_rtu_config_loads_with_the_sdm120_map():
    from heliogrid_agent.config import ModbusConfig

    config = parse_config(modbus(unit_id=3, baudrate=2400))
    assert isinstance(config.sensor, ModbusConfig)
    assert config.sensor.register_map.export_register == 0x004A
    assert config.sensor.register_map.import_register == 0x0048
    assert (config.sensor.unit_id, config.sensor.baudrate) == (3, 2400)


def test_modbus_tcp_config_splits_host_and_port():
    config = parse_config(modbus(transport="tcp", device="", host="192.168.1.50:5020", map="sdm630"))
    assert config.sensor.host_port == ("192.168.1.50", 5020)
    assert config.sensor.register_map.power_register == 0x0034
    assert parse_config(modbus(transport="tcp", host="[fd00::5]:502")).sensor.host_port == ("fd00::5", 502)


def test_modbus_custom_map_comes_from_the_registers_table():
    config = parse_config(
        modbus(
            map="custom",
            registers={"import_register": 0x5000, "export_register": 0x5004, "data_type": "uint32",
                       "energy_scale_wh": 10.0, "function": "holding"},
        )
    )  # fmt: skip
    regs = config.sensor.register_map
    assert (regs.import_register, regs.export_register, regs.data_type) == (0x5000, 0x5004, "uint32")
    assert regs.power_register is None


@pytest.mark.parametrize(("sensor", "message"), [
    ({"device": ""}, r"sensor.modbus.device = '': transport rtu needs the serial device"),
    ({"device": "ttyUSB0"}, r"sensor.modbus.device = 'ttyUSB0': transport rtu needs the serial device"),
    ({"unit_id": 0}, r"sensor.modbus.unit_id = 0 is not a Modbus unit id; expected 1..247"),
    ({"unit_id": 248}, r"sensor.modbus.unit_id = 248 is not a Modbus unit id; expected 1..247"),
    ({"transport": "tcp", "host": "meter.lan"}, r"sensor.modbus.host = 'meter.lan': transport tcp needs .* host:port"),
    ({"transport": "tcp", "host": ":502"}, r"sensor.modbus.host = ':502': transport tcp needs"),
    ({"transport": "tcp", "host": "meter:99999"}, r"sensor.modbus.host's port = 99999 is not a TCP port"),
    ({"transport": "udp"}, r"sensor.modbus.transport = 'udp' is not valid; expected one of \['rtu', 'tcp'\]"),
    ({"map": "sdm999"}, r"sensor.modbus.map = 'sdm999' is not a known register map; expected one of "
                        r"\['sdm120', 'sdm630', 'custom'\]"),
    ({"map": "custom"}, r'sensor.modbus.map = "custom" needs a \[sensor.modbus.registers\] table'),
    ({"registers": {"import_register": 1, "export_register": 2}}, r"only read with sensor.modbus.map = \"custom\""),
    ({"map": "custom", "registers": {"import_register": 1}}, r"missing key sensor.modbus.registers.export_register"),
    ({"map": "custom", "registers": {"import_register": 1, "export_register": 1}},
     r"import_register and export_register are both 1"),
    ({"map": "custom", "registers": {"import_register": 1, "export_register": 3, "data_type": "float64"}},
     r"sensor.modbus.registers.data_type = 'float64' is not valid"),
    ({"baudrate": 9601}, r"sensor.modbus.baudrate = 9601 is not a Modbus baud rate"),
    ({"parity": "X"}, r"sensor.modbus.parity = 'X' is not valid"),
    ({"timeout_seconds": 0}, r"sensor.modbus.timeout_seconds = 0.0 must be greater than 0"),
    ({"wrap_kwh": -1}, r"sensor.modbus.wrap_kwh = -1.0 must be 0"),
    ({"unit": 1}, r"unknown key sensor.modbus.unit; expected one of"),
])  # fmt: skip
def test_bad_modbus_settings_are_named_with_what_was_expected(sensor, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(modbus(**sensor))


def test_modbus_needs_the_installations_capacity():
    raw = modbus()
    del raw["meter"]["capacity_watts"]
    with pytest.raises(ConfigError, match=r"meter.capacity_watts is required for sensor 'modbus'"):
        parse_config(raw)


def test_s0_import_pin_must_differ_from_the_export_pin():
    with pytest.raises(ConfigError, match=r"sensor.s0.import_pin = 17 is already used by sensor.s0.pin"):
        parse_config(s0(import_pin=17))
    with pytest.raises(ConfigError, match=r"sensor.s0.import_pin = 40 is not a GPIO pin"):
        parse_config(s0(import_pin=40))
    assert parse_config(s0(import_pin=27)).sensor.import_pin == 27


def test_unknown_house_profile_is_named_with_the_choices():
    raw = {"meter": {"sensor": "simulated"}, "sensor": {"simulated": {"house_profile": "office"}}}
    with pytest.raises(
        ConfigError,
        match=r"sensor.simulated.house_profile = 'office' is not valid; expected one of "
        r"\['flat', 'household'\]",
    ):
        parse_config(raw)


def test_max_import_watts_must_be_positive():
    raw = {"meter": {"sensor": "simulated", "max_import_watts": 0}}
    with pytest.raises(ConfigError, match=r"meter.max_import_watts = 0.0 must be greater than 0"):
        parse_config(raw)


def buy(**keys) -> dict:
    return {"meter": {"sensor": "simulated"}, "buy": keys}


def test_automatic_buying_loads_with_its_cap_and_daily_budget_in_token_units():
    config = parse_config(buy(auto=True, max_price_per_kwh="0.25", daily_budget="5"))
    assert config.buy.auto is True
    assert config.buy.max_price_units == 25 * 10**16
    assert config.buy.daily_budget_units == 5 * 10**18
    assert parse_config(buy()).buy.auto is False  # off unless the owner asks for it


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"max_price_per_kwh": "-1"}, r"buy.max_price_per_kwh = '-1' must be a token amount >= 0"),
        ({"max_price_per_kwh": -0.5}, r"buy.max_price_per_kwh = -0.5 must be a token amount >= 0"),
        ({"daily_budget": "-3"}, r"buy.daily_budget = '-3' must be a token amount >= 0"),
        ({"auto": "yes"}, r"buy.auto = 'yes' must be true or false"),
        ({"auto": True, "daily_budget": "5"}, r"buy.auto = true needs buy.max_price_per_kwh > 0 \(it is 0\)"),
        ({"auto": True, "max_price_per_kwh": "1"}, r"buy.auto = true needs buy.daily_budget > 0 \(it is 0\)"),
        ({"daily_budget": "1e-19"}, r"buy.daily_budget = '1e-19' must be a token amount >= 0 with at most 18"),
    ],
)
def test_bad_buying_settings_are_named_with_the_value(keys, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(buy(**keys))


def test_the_ask_price_loads_in_token_units_and_is_off_unless_set():
    config = parse_config({"meter": {"sensor": "simulated"}, "sell": {"ask_price_per_kwh": "1.5"}})
    assert config.sell.ask_price_units == 15 * 10**17
    assert parse_config(buy()).sell.ask_price_units == 0  # 0: the agent offers nothing


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", r"sell.ask_price_per_kwh = '-1' must be a token amount >= 0"),
        (-0.5, r"sell.ask_price_per_kwh = -0.5 must be a token amount >= 0"),
        ("cheap", r"sell.ask_price_per_kwh = 'cheap' must be a token amount >= 0"),
        (True, r"sell.ask_price_per_kwh = True must be a token amount >= 0"),
    ],
)
def test_a_negative_or_garbage_ask_price_is_refused_with_the_key_and_value(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"meter": {"sensor": "simulated"}, "sell": {"ask_price_per_kwh": value}})
