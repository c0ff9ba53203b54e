#!/usr/bin/env python3
"""Print where to look after `make demo`: the stats page, and the health of every node.

Reads the JSON that playbooks/status.yml writes (inventories/lab/state/network-status.json) and
checks that the stats page answers.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATUS = ROOT / "inventories" / "lab" / "state" / "network-status.json"


def stats_url() -> str:
    import yaml

    hosts = yaml.safe_load((ROOT / "inventories" / "lab" / "hosts.yml").read_text())
    stats = hosts["all"]["children"]["cloud"]["children"]["stats"]["hosts"]
    return f"http://{next(iter(stats.values()))['lab_address']}/"


def answers(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the lab's own address
            return f"answers (HTTP {response.status})"
    except OSError as exc:
        return f"does not answer ({exc})"


def main() -> int:
    url = stats_url()
    print(f"\nStats page:  {url}  {answers(url)}")
    print(f"JSON API:    {url}api/v1/summary")
    if STATUS.exists():
        print(f"Network status, as JSON for scripts: {STATUS.relative_to(ROOT)}")
    else:
        print("No network status yet: site.yml has not built the chain on this lab (playbooks/status.yml writes it)")
    print("Lab hosts: make lab-status; logs: podman exec hg-<host> journalctl -u <service>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
