"""The clique_vote module (roles/clique_sealer/library, playbooks/sealer_vote.yml) against real geth, the release
the lab's sealers run: the dev chain's single sealer votes a second signer in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from heliogrid_testing.devchain import SealerWithIPC, geth_binary

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

ANSIBLE = shutil.which("ansible", path=str(Path(sys.executable).parent)) or "ansible"
NEWCOMER = "0x" + "c0" * 20  # an address nobody holds the key of: it is voted in, never seals
STRANGER = "0x" + "5a" * 20


@pytest.fixture
def chain(tmp_path: Path):
    with SealerWithIPC(tmp_path / "devchain") as chain:  # GethNotBuilt says to run `make geth` first
        yield chain


def clique_vote(chain: SealerWithIPC, *flags: str, **args: object) -> dict:
    """Run the module once on this machine, as the sealer's host runs it; return its result."""
    args = {"voter": chain.sealer.address, "voters": [chain.sealer.address], "ipc_path": str(chain.ipc), **args}
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_STRATEGY": "linear",
    }
    proc = subprocess.run(
        [ANSIBLE, "localhost", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}", "-M",
         str(ROOT / "roles" / "clique_sealer" / "library"), "-m", "clique_vote", "-a", json.dumps(args), *flags],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip
    try:
        return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        pytest.fail(f"no module result: {proc.stdout[-3000:]} {proc.stderr[-2000:]}")


def attach(chain: SealerWithIPC, expression: str) -> object:
    out = subprocess.run(
        [str(geth_binary()), "attach", "--exec", f"JSON.stringify({expression})", str(chain.ipc)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return json.loads(json.loads(out))


def test_a_single_sealer_votes_a_second_signer_in_once_and_withdraws_its_proposal(chain) -> None:
    sealer = chain.sealer.address.lower()

    check = clique_vote(chain, "--check", signer=NEWCOMER)
    assert (check["changed"], check["proposed"]) == (True, True)
    assert attach(chain, "clique.proposals") == {}, "check mode proposed"

    proposed = clique_vote(chain, signer=NEWCOMER)
    assert (proposed["changed"], proposed["proposed"], proposed["signers"]) == (True, True, [sealer])

    taken = clique_vote(chain, signer=NEWCOMER, wait=True, timeout=60)
    assert not taken.get("failed"), taken
    assert sorted(taken["signers"]) == sorted([sealer, NEWCOMER])
    assert (taken["changed"], taken["withdrawn"]) == (True, True)
    assert sorted(s.lower() for s in attach(chain, "clique.getSigners()")) == sorted([sealer, NEWCOMER])
    assert attach(chain, "clique.proposals") == {}, "the passed proposal was left to vote again"

    again = clique_vote(chain, signer=NEWCOMER, wait=True, timeout=60)
    assert (again["changed"], again["proposed"], again["withdrawn"]) == (False, False, False)

    # The chain now has two signers and one of them never seals: removing it needs both, and one sealer refuses.
    removal = clique_vote(chain, signer=NEWCOMER, state="absent")
    assert removal.get("failed"), removal
    assert "only 1 of the 2 signers" in removal["msg"]
    assert attach(chain, "clique.proposals") == {}

    assert clique_vote(chain, signer=STRANGER, state="absent")["changed"] is False
    bad = clique_vote(chain, signer="0x1234", state="absent")
    assert bad.get("failed"), bad
    assert "0x1234" in bad["msg"]
