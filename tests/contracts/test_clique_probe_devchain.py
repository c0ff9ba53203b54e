"""playbooks/upgrade.yml's chain probe (plugins/filter/clique_health.py) run in real geth's console, the release the
lab's sealers run: the dev chain's single sealer is healthy, and is seen sealing again after a given block."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from heliogrid_testing.devchain import SealerWithIPC, geth_binary
from heliogrid_testing.plugins import plugin

pytestmark = pytest.mark.slow

clique_health = plugin("plugins/filter/clique_health.py")
ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or "ansible-playbook"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory):
    """One sealing chain for the module: every test here only reads it (the probe, the upgrade checks)."""
    with SealerWithIPC(tmp_path_factory.mktemp("devchain")) as chain:  # GethNotBuilt says to run `make geth` first
        yield chain


def probe(chain: SealerWithIPC, since: int = -1) -> dict:
    """What upgrade.yml registers from `geth attach --exec <probe>` on a sealer, decoded as the play decodes it."""
    command = [str(geth_binary()), "attach", "--exec", clique_health.clique_probe_js(since), str(chain.ipc)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    return clique_health.clique_probe({"rc": result.returncode, "stdout": result.stdout, "stderr": result.stderr})


def test_the_probe_finds_a_sealing_chain_healthy_and_names_its_signer(chain) -> None:
    while chain.block_number() < 3:
        time.sleep(chain.period)
    answer = probe(chain)
    sealer = chain.sealer.address.lower()
    assert answer["etherbase"].lower() == sealer
    assert [s.lower() for s in answer["signers"]] == [sealer]
    assert {r["signer"].lower() for r in answer["recent"]} == {sealer}
    assert [r["number"] for r in answer["recent"]] == list(range(answer["recent"][0]["number"], answer["head"] + 1))
    assert clique_health.clique_health_problems(answer, chain.period) == []


def test_the_probe_waits_for_a_block_sealed_after_the_one_given(chain) -> None:
    while chain.block_number() < 2:
        time.sleep(chain.period)
    head = probe(chain)["head"]
    assert clique_health.clique_sealed_after(probe(chain, since=head + 1000), head) == 0
    deadline = time.monotonic() + 30 * chain.period
    while (sealed := clique_health.clique_sealed_after(probe(chain, since=head), head)) == 0:
        assert time.monotonic() < deadline, f"no block after #{head} seen sealed in {30 * chain.period} s"
        time.sleep(chain.period)
    assert sealed == head + 1


def test_a_stopped_chain_is_reported_as_not_advancing(chain) -> None:
    while chain.block_number() < 2:
        time.sleep(chain.period)
    answer = probe(chain)
    stale = {**answer, "now": answer["head_time"] + 3 * chain.period + 1}
    assert clique_health.clique_health_problems(stale, chain.period)[0].startswith(f"head #{answer['head']} is ")


def upgrade_tasks(chain: SealerWithIPC, tmp_path: Path, tasks: str, *extra: str) -> subprocess.CompletedProcess:
    """Tasks of upgrade.yml (playbooks/tasks/<tasks>.yml) run by ansible-playbook on this machine's dev chain."""
    play = tmp_path / "check.yml"
    play.write_text(
        json.dumps(
            [
                {
                    "name": f"Run upgrade.yml's {tasks} on the dev chain",
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "vars": {
                        "geth_binary": str(geth_binary()),
                        "geth_datadir": str(chain.ipc.parent),
                        "clique_genesis_period": chain.period,
                    },
                    "tasks": [{"ansible.builtin.include_tasks": str(ROOT / "playbooks" / "tasks" / f"{tasks}.yml")}],
                }
            ]
        )
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_STRATEGY": "linear"}
    command = [PLAYBOOK, "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}", str(play), *extra]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_upgrade_checks_pass_on_a_sealing_chain_and_refuse_a_stalled_one(chain, tmp_path: Path) -> None:
    while chain.block_number() < 5:
        time.sleep(chain.period)
    passed = upgrade_tasks(chain, tmp_path, "clique_healthy")
    assert passed.returncode == 0, passed.stdout[-3000:]
    refused = upgrade_tasks(
        chain, tmp_path, "clique_healthy", "-e", "upgrade_stall_periods=-1"
    )  # any head counts as too old
    assert refused.returncode != 0
    assert "The chain is not healthy enough to take a sealer out" in refused.stdout, refused.stdout[-3000:]
    assert "the chain is not advancing" in refused.stdout


def test_upgrade_waits_for_the_sealer_to_seal_after_its_restart_and_fails_when_it_does_not(chain, tmp_path) -> None:
    while chain.block_number() < 3:
        time.sleep(chain.period)
    head = chain.block_number()
    sealed = upgrade_tasks(chain, tmp_path, "clique_sealed_again", "-e", f"upgrade__head_before={head}")
    assert sealed.returncode == 0, sealed.stdout[-3000:]
    never = upgrade_tasks(
        chain, tmp_path, "clique_sealed_again", "-e", f"upgrade__head_before={head + 1000}",
        "-e", "upgrade_seal_timeout_periods=2",
    )  # fmt: skip
    assert never.returncode != 0, never.stdout[-4000:]
    assert f"localhost has sealed no block since #{head + 1000}" in " ".join(never.stdout.split())
