"""lab/lab.py down: the lab goes with what the controller recorded for it (no podman needed: its calls are faked)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lab import lab


def test_down_clears_the_controller_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []

    def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        calls.append(args)
        stdout = json.dumps([{"name": "heliogrid-lab"}]) if args[:2] == ("network", "ls") else ""
        return subprocess.CompletedProcess(args, 0, stdout, "")

    inventory = tmp_path / "inventories" / "lab"
    (inventory / "state" / "ethstats").mkdir(parents=True)
    (inventory / "state" / "contracts.json").write_text('{"EnergyToken": {"address": "0xC33c"}}')
    (inventory / "state" / "ethstats" / "secret").write_text("s")
    monkeypatch.setattr(lab, "ROOT", tmp_path)
    monkeypatch.setattr(lab, "INVENTORY", inventory)
    monkeypatch.setattr(lab, "podman", podman)
    monkeypatch.setattr(lab, "containers", lambda: [{"Names": ["hg-miner1"]}, {"Names": ["hg-pi1"]}])

    lab.down()

    assert ("rm", "-f", "-t", "5", "hg-miner1", "hg-pi1") in calls
    assert ("network", "rm", "heliogrid-lab") in calls
    assert (inventory / "state").is_dir()
    assert list((inventory / "state").iterdir()) == []
