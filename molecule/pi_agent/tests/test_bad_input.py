"""Role pi_agent refuses bad input with a message naming the value, before it changes anything on the Pi."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

PLAYBOOK = Path(__file__).resolve().parent.parent / "bad_input.yml"


def test_bad_inputs_fail_with_clear_messages_before_any_change(host):
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    env = {
        **os.environ,
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_ROLES_PATH": str(project / "roles"),
        "ANSIBLE_FILTER_PLUGINS": str(project / "plugins" / "filter"),
        "ANSIBLE_TEST_PLUGINS": str(project / "plugins" / "test"),
    }
    run = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "--limit", host.backend.name, str(PLAYBOOK)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(run.stdout)
    messages = next(
        t["hosts"][host.backend.name]["msg"]
        for play in result["plays"]
        for t in play["tasks"]
        if t["task"]["name"] == "Report what each bad input was told"
    )
    expected = {
        "unknown sensor": "pi_agent_sensor",
        "pin off the header": "pi_agent_s0_pin is '40', expected a BCM GPIO number 0..27",
        "capacity not positive": "pi_agent_capacity_watts is '0', expected a whole number of watts greater than 0",
        "port out of range": "pi_agent_ui_port is '70000', expected a TCP port in 1..65535",
        "LED on the S0 pin": "pi_agent_led_pin is '17', expected null or a free BCM GPIO number",
        "simulated size contradicts capacity": "must be positive and equal pi_agent_capacity_watts (1200 W",
        "no deployment record": "does not exist on the controller",
        "Modbus meter without its serial device": "pi_agent_modbus_device is '', expected the RS-485 adapter's serial",
        "Modbus unit id out of range": "pi_agent_modbus_unit_id is '0', expected the meter's Modbus address 1..247",
    }
    assert set(messages) == set(expected)
    for case, fragment in expected.items():
        assert fragment in messages[case], f"{case}: {messages[case]}"
    stats = result["stats"][host.backend.name]
    assert stats["changed"] == 0
    # The cases point the role at a user and directories of their own: none of them may exist afterwards.
    assert host.run("getent passwd badinput").rc == 2
    assert not host.file("/etc/badinput").exists
    assert not host.file("/opt/badinput").exists
