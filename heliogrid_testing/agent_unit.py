"""The metering agent's systemd unit as roles/pi_agent installs it: one statement of its hardening for the checks
that read it (the pi_agent molecule scenario on amd64, tests/system/test_arm64_pi.py on the emulated arm64 Pi)."""

from __future__ import annotations

# roles/pi_agent defaults (the lab and the scenario do not change them)
VENV = "/opt/heliogrid-agent/venv"
UNIT = "/etc/systemd/system/heliogrid-agent.service"
SERVICE = "heliogrid-agent"
USER = "heliogrid-agent"

# What the installed unit file sets to sandbox the agent (roles/pi_agent/templates/heliogrid-agent.service.j2).
HARDENING = {
    "NoNewPrivileges": "true",
    "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/heliogrid-agent",
    "ProtectHome": "true",
    "PrivateTmp": "true",
    "PrivateDevices": "true",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


def unit_settings(text: str) -> dict[str, str]:
    """The `key=value` lines of a unit file (the last one wins, as in systemd)."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
