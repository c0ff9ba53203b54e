"""Filters for playbooks/upgrade.yml: is the Clique chain healthy, and has a restarted sealer sealed again?

A sealer is asked over its IPC socket with ``geth attach --exec`` and the probe in upgrade.yml: its head, the
head's time, the node's clock, the signer set, its own etherbase and the signer of each recent block
(``clique.getSigner``). The filters read that answer; they do no I/O.
"""

from __future__ import annotations

import json
from typing import Any

from ansible.errors import AnsibleFilterError

# The probe: the head, its time, the node's clock, the signers, the node's etherbase and who signed each block after
# SINCE (SINCE < 0: the last 4 blocks per signer), at most the last 64. Its answer is what the filters below read.
PROBE_JS = """(function () {
  var since = SINCE, n = eth.blockNumber, head = eth.getBlock(n), signers = clique.getSigners(), etherbase = null;
  try { etherbase = eth.coinbase; } catch (e) {}
  var first = Math.max(1, n - 63, since >= 0 ? since + 1 : n - 4 * signers.length + 1), recent = [];
  for (var i = first; i <= n; i++) recent.push({number: i, signer: clique.getSigner('0x' + i.toString(16))});
  return JSON.stringify({head: n, head_time: head.timestamp, now: Math.floor(Date.now() / 1000),
                         signers: signers, etherbase: etherbase, recent: recent});
})()"""


def clique_probe_js(since: int | str = -1) -> str:
    """The console expression to run with ``geth attach --exec``: the blocks after ``since`` (-1: the recent ones)."""
    try:
        since = int(since)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"clique_probe_js: since is {since!r}, expected a block number or -1") from exc
    return PROBE_JS.replace("SINCE", str(since))


def clique_probe(raw: dict[str, Any]) -> dict[str, Any]:
    """A registered ``geth attach --exec 'JSON.stringify(...)'`` result -> the probe's answer as a mapping."""
    if not isinstance(raw, dict) or raw.get("rc") != 0:
        reason = ""
        if isinstance(raw, dict):
            reason = (raw.get("stderr") or raw.get("msg") or raw.get("stdout") or "").strip()
        raise AnsibleFilterError(f"clique_probe: the node's console did not answer: {reason or raw!r}")
    try:
        text = json.loads(raw["stdout"])
        answer = json.loads(text) if isinstance(text, str) else text
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"clique_probe: unreadable answer {raw.get('stdout')!r}: {exc}") from exc
    missing = [k for k in ("head", "head_time", "now", "signers", "recent") if k not in answer]
    if missing:
        raise AnsibleFilterError(f"clique_probe: the answer lacks {', '.join(missing)}: {answer!r}")
    return answer


def clique_health_problems(
    probe: dict[str, Any], period: int | float | str, stall_periods: int | float | str = 3
) -> list[str]:
    """What keeps the chain from being safe to restart a sealer in: [] when every signer sealed one of the recent
    blocks and the head is younger than ``stall_periods`` periods."""
    period, stall_periods = float(period), float(stall_periods)  # extra vars (-e) arrive as strings
    if period <= 0:
        raise AnsibleFilterError(f"clique_health_problems: period is {period!r}, expected seconds > 0")
    problems = []
    age = int(probe["now"]) - int(probe["head_time"])
    if age > stall_periods * period:
        problems.append(
            f"head #{probe['head']} is {age} s old ({stall_periods:g} periods of {period:g} s allowed): "
            "the chain is not advancing"
        )
    recent = probe["recent"]
    sealed = {str(r["signer"]).lower() for r in recent}
    idle = [s for s in probe["signers"] if s.lower() not in sealed]
    if not recent:
        problems.append(f"no recent block to read signers from (head #{probe['head']})")
    elif idle:
        span = f"#{recent[0]['number']}..#{recent[-1]['number']}"
        problems.append(
            f"{len(idle)} of {len(probe['signers'])} signers sealed none of the blocks {span}: {', '.join(idle)}"
        )
    return problems


def clique_sealed_after(probe: dict[str, Any], block: int | str) -> int:
    """The first block after ``block`` that the probed node's own etherbase signed; 0 while there is none."""
    etherbase = str(probe.get("etherbase") or "").lower()
    if not etherbase:
        raise AnsibleFilterError("clique_sealed_after: the probed node has no etherbase: it is not a sealer")
    for r in probe["recent"]:
        if int(r["number"]) > int(block) and str(r["signer"]).lower() == etherbase:
            return int(r["number"])
    return 0


class FilterModule:
    """Ansible entry point."""

    def filters(self) -> dict:
        return {
            "clique_probe_js": clique_probe_js,
            "clique_probe": clique_probe,
            "clique_health_problems": clique_health_problems,
            "clique_sealed_after": clique_sealed_after,
        }
