"""Bad inputs an operator or a user plausibly gets wrong: each is refused with a message that names what was wrong,
and nothing changes (see conftest.py for how "nothing" is checked for each kind).

The table is the test: add a row to cover another input. test-results/bad_inputs.md lists every message seen.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from heliogrid_testing.bad_inputs import UNSET, AgentToml, Call, Inventory, Outcome, Raw
from lab import lab

INVENTORY = "inventory"  # variables in group_vars, applied with the real playbook to a throwaway container
AGENT = "agent config"  # a Pi's agent.toml, read by `heliogrid-agent run`
CONTRACT = "contract call"  # a transaction to the deployed contracts

ZERO = "0x" + "0" * 40


@dataclass(frozen=True)
class Case:
    kind: str
    name: str
    bad: Inventory | AgentToml | Call
    expect: str  # a fragment of the message the input must be given


CASES = [
    # -- inventory variables -------------------------------------------------------------------------------------
    Case(INVENTORY, "geth version with a leading v", Inventory("network.yml", {"geth_version": "v1.2.3"}),
         "geth_version is 'v1.2.3', expected a release number x.y.z"),
    Case(INVENTORY, "chain id written as a name", Inventory("network.yml", {"clique_genesis_chain_id": "helio-1"}),
         "argument 'clique_genesis_chain_id' is of type str and we were unable to convert to int"),
    Case(INVENTORY, "block period of 0", Inventory("network.yml", {"clique_genesis_period": 0}),
         "clique_genesis_period is '0', expected whole seconds between blocks, at least 1"),
    Case(INVENTORY, "no initial sealer", Inventory("network.yml", {"clique_genesis_sealers": []}),
         "clique_genesis: the sealer list is empty"),
    Case(INVENTORY, "sealer address cut short",
         Inventory("network.yml", {"clique_genesis_sealer_addresses": ["0x8a3F5e2b41"]}),
         "clique_genesis: 0x8a3F5e2b41 is not an Ethereum address (0x + 40 hexadecimal characters)"),
    Case(INVENTORY, "geth metrics on an address with a typo",
         Inventory("network.yml", {"geth_metrics_enabled": True, "geth_metrics_address": "10.77.0.300"}),
         "geth_metrics_address is '10.77.0.300', expected one address of this host"),
    Case(INVENTORY, "a scraper given as a network, where the firewall wants one address",
         Inventory("overlay.yml", {"firewall_monitoring_sources": ["10.77.0.0/24"]}),
         "10.77.0.0/24 in firewall_monitoring_sources is not an overlay address"),
    Case(INVENTORY, "overlay subnet overlapping the network the hosts are on",
         Inventory("overlay.yml", {"overlay_subnet": "10.213.0.0/16", "overlay_address": "10.213.9.11"}),
         "overlay_subnet 10.213.0.0/16 overlaps 10.213.7.0/24, a network the nodes already use"),
    Case(INVENTORY, "two nodes given one overlay address",
         Inventory("overlay.yml", {}, pis={"pi9": {"overlay_address": "10.77.0.11"}}),
         "overlay_address 10.77.0.11 is already badinput's"),
    Case(INVENTORY, "a Pi with no overlay address", Inventory("overlay.yml", {}, pis={"pi9": {}}),
         "pi9 has no overlay_address: give every node one address inside 10.77.0.0/24"),
    Case(INVENTORY, "sensor name in capitals", Inventory("pi_agent.yml", {"pi_agent_sensor": "S0"}),
         "value of pi_agent_sensor must be one of: modbus, s0, mcp3xxx, simulated, got: S0"),
    Case(INVENTORY, "Modbus meter with no serial device", Inventory("pi_agent.yml", {"pi_agent_sensor": "modbus"}),
         "pi_agent_modbus_device is '', expected the RS-485 adapter's serial device"),
    Case(INVENTORY, "Modbus unit id out of range",
         Inventory("pi_agent.yml", {"pi_agent_sensor": "modbus", "pi_agent_modbus_device": "/dev/ttyUSB0",
                                    "pi_agent_modbus_unit_id": 248}),
         "pi_agent_modbus_unit_id is '248', expected the meter's Modbus address 1..247"),
    Case(INVENTORY, "S0 input given as header pin 40",
         Inventory("pi_agent.yml", {"pi_agent_sensor": "s0", "pi_agent_s0_pin": 40}),
         "pi_agent_s0_pin is '40', expected a BCM GPIO number 0..27"),
    Case(INVENTORY, "simulated day that stands still", Inventory("pi_agent.yml", {"pi_agent_simulated_time_scale": 0}),
         "pi_agent_simulated_time_scale '0' greater than 0"),
    Case(INVENTORY, "UI port out of range", Inventory("pi_agent.yml", {"pi_agent_ui_port": 70000}),
         "pi_agent_ui_port is '70000', expected a TCP port in 1..65535"),
    Case(INVENTORY, "buy cap written with a decimal comma",
         Inventory("pi_agent.yml", {"pi_agent_buy_max_price_per_kwh": "1,5"}),
         "pi_agent_buy_max_price_per_kwh is '1,5', expected a token amount such as \"1.5\""),
    Case(INVENTORY, "negative buy cap", Inventory("pi_agent.yml", {"pi_agent_buy_max_price_per_kwh": "-1"}),
         "pi_agent_buy_max_price_per_kwh is '-1', expected a token amount such as \"1.5\""),
    Case(INVENTORY, "negative ask price", Inventory("pi_agent.yml", {"pi_agent_sell_ask_price_per_kwh": "-1"}),
         "pi_agent_sell_ask_price_per_kwh is '-1', expected a token amount such as \"1.5\""),
    Case(INVENTORY, "automatic buying without a daily budget",
         Inventory("pi_agent.yml", {"pi_agent_buy_auto": True, "pi_agent_buy_max_price_per_kwh": "0.5"}),
         "automatic buying needs both above 0"),
    Case(INVENTORY, "owner address cut short", Inventory("pi_agent.yml", {"pi_agent_owner_address": "0x2B5AD5c4795c"}),
         "pi_agent_owner_address is '0x2B5AD5c4795c', expected an account address (0x and 40 hex digits)"),
    Case(INVENTORY, "agent packages from no named source (pip's default would be PyPI)",
         Inventory("pi_agent.yml", {"pi_agent_pip_find_links": UNSET, "pi_agent_pip_no_index": UNSET}),
         "pi_agent: heliogrid-agent would come from public PyPI, where anyone may publish that name"),
    Case(INVENTORY, "agent wheel's digest not pinned", Inventory("pi_agent.yml", {"pi_agent_package_sha256": UNSET}),
         "pi_agent_package_sha256 is '', expected the sha256 (64 lowercase hex digits) of the heliogrid-agent 0.1.0"),
    Case(INVENTORY, "stats wheelhouse named but PyPI not ruled out",
         Inventory("stats.yml", {"stats_app_pip_no_index": False}),
         "stats_app: heliogrid-stats would come from public PyPI, where anyone may publish that name"),
    Case(INVENTORY, "deployer key's vault secret missing",
         Inventory("contracts.yml", {"vault_contracts_deployer_private_key": UNSET}),
         "'vault_contracts_deployer_private_key' is undefined"),
    Case(INVENTORY, "contracts admin left at the zero address",
         Inventory("contracts.yml", {"contracts_admin_address": ZERO}),
         f"contracts_admin_address is '{ZERO}', expected 0x and 40 hexadecimal digits"),
    # -- agent configurations ------------------------------------------------------------------------------------
    Case(AGENT, "sensor name in capitals", AgentToml({"meter.sensor": "S0"}),
         "meter.sensor = 'S0' is not a known sensor; expected one of ['s0', 'mcp3xxx', 'simulated', 'modbus']"),
    Case(AGENT, "Modbus meter with no serial device",
         AgentToml({"meter.sensor": "modbus", "meter.capacity_watts": 3000, "sensor.modbus.map": "sdm120"}),
         "sensor.modbus.device = '': transport rtu needs the serial device of the RS-485 adapter"),
    Case(AGENT, "Modbus unit id out of range",
         AgentToml({"meter.sensor": "modbus", "meter.capacity_watts": 3000, "sensor.modbus.device": "/dev/ttyUSB0",
                    "sensor.modbus.unit_id": 0}),
         "sensor.modbus.unit_id = 0 is not a Modbus unit id; expected 1..247"),
    Case(AGENT, "Modbus TCP meter given without its port",
         AgentToml({"meter.sensor": "modbus", "meter.capacity_watts": 3000, "sensor.modbus.transport": "tcp",
                    "sensor.modbus.host": "192.168.1.50"}),
         "sensor.modbus.host = '192.168.1.50': transport tcp needs the meter's (or gateway's) host:port"),
    Case(AGENT, "S0 input given as header pin 40",
         AgentToml({"meter.sensor": "s0", "meter.capacity_watts": 3000, "sensor.s0.pin": 40}),
         "sensor.s0.pin = 40 is not a GPIO pin; expected a BCM number 0..27"),
    Case(AGENT, "LED wired to the S0 pin",
         AgentToml({"meter.sensor": "s0", "meter.capacity_watts": 3000, "sensor.s0.pin": 17, "gpio.led_pin": 17}),
         "gpio.led_pin = 17 is already used by sensor.s0.pin"),
    Case(AGENT, "capacity written with its unit",
         AgentToml({"meter.sensor": "s0", "meter.capacity_watts": "3 kW", "sensor.s0.pin": 17}),
         "meter.capacity_watts = '3 kW' must be a finite number"),
    Case(AGENT, "UI port out of range", AgentToml({"ui.enabled": True, "ui.port": 70000}),
         "ui.port = 70000 is not a TCP port; expected 1..65535"),
    Case(AGENT, "buy cap below zero", AgentToml({"buy.max_price_per_kwh": "-1"}),
         "buy.max_price_per_kwh = '-1' must be a token amount >= 0 with at most 18 decimals"),
    Case(AGENT, "ask price below zero", AgentToml({"sell.ask_price_per_kwh": "-0.5"}),
         "sell.ask_price_per_kwh = '-0.5' must be a token amount >= 0 with at most 18 decimals"),
    Case(AGENT, "automatic buying without a daily budget", AgentToml({"buy.auto": True, "buy.max_price_per_kwh": "1"}),
         "buy.auto = true needs buy.daily_budget > 0 (it is 0)"),
    Case(AGENT, "page that answers no host", AgentToml({"ui.enabled": True, "ui.allowed_hosts": Raw("[]")}),
         "ui.allowed_hosts = [] would refuse every request"),
    Case(AGENT, "misspelt key", AgentToml({"meter.intervall_seconds": 5}),
         "unknown key meter.intervall_seconds"),
    Case(AGENT, "unterminated string after a hand edit", AgentToml({"meter.sensor": Raw('"simulated')}),
         "etc/agent.toml is not valid TOML"),
    Case(AGENT, "a Pi's GPIO backend on a machine without GPIO", AgentToml({"gpio.pin_factory": "lgpio"}),
         "gpio.pin_factory = 'lgpio' cannot be used on this machine"),
    Case(AGENT, "deployment record path mistyped", AgentToml({"chain.contracts_file": "{pi}/etc/contract.json"}),
         "etc/contract.json does not exist (the deploy play writes it)"),
    # -- contract calls (the scene: meter registered for owner, 4 kWh reported and on offer 1, buyer holds tokens) --
    Case(CONTRACT, "report from an unregistered meter", Call("outsider", "market.reportProduction", 1000),
         "MeterNotRegistered(meter=outsider)"),
    Case(CONTRACT, "report a total below the last (counter restored from an old backup)",
         Call("meter", "market.reportProduction", 3000),
         "TotalDecreased(previous=4000, reported=3000)"),
    Case(CONTRACT, "report more than the capacity can produce", Call("meter", "market.reportProduction", 100_000),
         "ExceedsCapacity(increaseWh=96000, maxIncreaseWh="),
    Case(CONTRACT, "register a meter without an owner",
         Call("registrar", "market.registerMeter", "outsider", ZERO, 3000),
         f"InvalidOwnerAddress(owner={ZERO})"),
    Case(CONTRACT, "register a meter with no capacity",
         Call("registrar", "market.registerMeter", "outsider", "owner", 0),
         "ZeroCapacity(meter=outsider)"),
    Case(CONTRACT, "register a meter from an account that is not the registrar",
         Call("outsider", "market.registerMeter", "outsider", "owner", 3000),
         "AccessControlUnauthorizedAccount(account=outsider, neededRole=REGISTRAR_ROLE)"),
    Case(CONTRACT, "tariff set far above any real one", Call("admin", "market.setTariff", 10**25),
         "TariffTooHigh(tariff=10000000000000000000000000, maxTariff=1000000000000000000000000)"),
    Case(CONTRACT, "move a meter from an account that is not the registrar",
         Call("owner", "market.transferMeter", "meter", "buyer"),
         "AccessControlUnauthorizedAccount(account=owner, neededRole=REGISTRAR_ROLE)"),
    Case(CONTRACT, "buy more than the offer holds", Call("buyer", "market.buy", 1, 5),
         "InsufficientOffer(offerId=1, requestedKWh=5, remainingKWh=4)"),
    Case(CONTRACT, "buy without approving the market", Call("buyer", "market.buy", 1, 2),
         "ERC20InsufficientAllowance(spender=market, allowance=0, needed=600000000000000000)"),
]  # fmt: skip


def attempt(case: Case, request: pytest.FixtureRequest) -> Outcome:
    if isinstance(case.bad, Inventory):
        return request.getfixturevalue("throwaway_host").apply(case.bad.playbook, case.bad.variables, case.bad.pis)
    if isinstance(case.bad, AgentToml):
        return request.getfixturevalue("agent").run(case.bad.edits)
    return request.getfixturevalue("scene").call(case.bad)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, id=f"{case.kind}: {case.name}", marks=[pytest.mark.slow] if case.kind == INVENTORY else [])
        for case in CASES
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_changes_nothing(case: Case, request, report) -> None:
    outcome = attempt(case, request)
    report.record(case, outcome)
    assert outcome.refused, f"{case.name}: accepted ({outcome.message[-2000:]})"
    assert case.expect in outcome.message, f"{case.name}: expected {case.expect!r} in {outcome.message[-3000:]!r}"
    assert not outcome.changes, f"{case.name} changed:\n" + "\n".join(outcome.changes[:50])


def test_the_table_holds_20_cases_or_more_and_6_of_every_kind() -> None:
    inputs = {INVENTORY: Inventory, AGENT: AgentToml, CONTRACT: Call}
    assert len(CASES) >= 20
    assert all(sum(case.kind == kind for case in CASES) >= 6 for kind in inputs)
    assert all(isinstance(case.bad, inputs[case.kind]) for case in CASES)
    assert len({(case.kind, case.name) for case in CASES}) == len(CASES)


# -- a wheelhouse serving other bytes under the locked names ------------------------------------------------------
# Not a row of the table: the role has created the user and the venv by the time pip refuses. What must not change is
# the venv: pip checks every file against the lock before it installs any. One impostor per run: pip names only the
# first mismatch it meets, so a wheelhouse with two would show one of them refused.

WHEELHOUSE = Path(os.environ.get("HELIOGRID_CACHE") or Path.home() / ".cache" / "heliogrid") / "wheelhouse" / "current"


def tamper(wheel: Path) -> None:
    """Add a module to a wheel: the same name and version with other bytes, as an impostor's upload would be."""
    top = wheel.name.split("-")[0]
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr(f"{top}/_impostor.py", "import os\nos.system('id > /tmp/owned')\n")


# The agent's own name is the case that matters (dependency confusion); a locked dependency with other bytes meets the
# same pip check (tests/unit/test_locks.py proves every locked package carries its hashes), so it is not run again
# here at two more minutes of the integration tier.
@pytest.mark.slow
@pytest.mark.parametrize(
    "pattern",
    [pytest.param("heliogrid_agent-*-py3-none-any.whl", id="the agent's own name (dependency confusion)")],
)
def test_a_wheel_whose_hash_differs_is_refused_and_the_venv_gets_nothing(pattern, throwaway_host, tmp_path) -> None:
    if not (WHEELHOUSE / ".complete").exists():
        pytest.fail(f"needs the wheelhouse {WHEELHOUSE} (make wheels)")
    agent = next(WHEELHOUSE.glob("heliogrid_agent-*-py3-none-any.whl"))
    digest = (WHEELHOUSE / f"{agent.name}.sha256").read_text().split()[0]  # the one the operator pinned
    copy = tmp_path / "wheelhouse"
    shutil.copytree(WHEELHOUSE, copy)
    tampered = next(copy.glob(pattern))
    tamper(tampered)
    served = f"/srv/{tmp_path.name}"
    lab.podman("cp", str(copy), f"{throwaway_host.container}:{served}")

    outcome = throwaway_host.apply(
        "pi_agent.yml", {"pi_agent_pip_find_links": [f"file://{served}/"], "pi_agent_package_sha256": digest}
    )
    throwaway_host.last = None  # this case changed the container: the next one takes its own "before"

    assert outcome.refused, outcome.message[-2000:]
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in outcome.message, outcome.message[-3000:]
    assert tampered.name in outcome.message, outcome.message[-3000:]
    installed = lab.podman(
        "exec", throwaway_host.container, "/opt/heliogrid-agent/venv/bin/python", "-c",
        "import importlib.util as u; print([m for m in ('heliogrid_agent', 'web3') if u.find_spec(m)])",
    ).stdout.strip()  # fmt: skip
    assert installed == "[]", f"the refused install left {installed} in the venv"
    retry = lab.podman(
        "exec", throwaway_host.container, "test", "-e", "/opt/heliogrid-agent/requirements.txt", check=False
    )
    assert retry.returncode != 0, "the next run would not install again: requirements.txt of the refused install kept"
