"""Filters for playbooks/status.yml: turn each node's raw answer into one report of the network.

Each node is asked over its IPC socket with ``geth attach --exec 'JSON.stringify({...})'``; geth prints the
JSON as a quoted JavaScript string. ``network_status_report`` decodes those answers and assembles the report
that status.yml prints and writes as JSON; ``network_status_lines`` makes the human summary of it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ansible.errors import AnsibleFilterError


def _decode(raw: dict[str, Any]) -> dict[str, Any]:
    """One node's registered command result -> its status, or the reason it gave none."""
    if raw.get("rc") != 0:
        reason = (raw.get("stderr") or raw.get("msg") or raw.get("stdout") or "no answer").strip()
        return {"reachable": False, "error": reason.splitlines()[-1] if reason else "no answer"}
    try:
        text = json.loads(raw["stdout"])
        answer = json.loads(text) if isinstance(text, str) else text
    except (KeyError, TypeError, ValueError) as exc:
        return {"reachable": False, "error": f"unreadable answer from geth: {exc}"}
    return {"reachable": True, "error": None, **answer}


def _iso(timestamp: int | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def network_status_report(raw_by_host: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Assemble ``{"chain": {...}, "hosts": {host: {...}}}`` from each host's registered ``geth attach`` result."""
    if not isinstance(raw_by_host, dict):
        raise AnsibleFilterError(f"network_status_report: expected a mapping of host to result, got {raw_by_host!r}")
    decoded = {host: _decode(raw or {}) for host, raw in raw_by_host.items()}
    answered = [s for s in decoded.values() if s["reachable"]]
    best = max(answered, key=lambda s: s.get("block", -1), default={})
    signers = [s.lower() for s in best.get("signers") or []]
    activity = (best.get("activity") or {}).get("sealerActivity") or {}
    hosts = {}
    for host, s in decoded.items():
        etherbase = (s.get("etherbase") or "").lower() or None
        hosts[host] = {
            "reachable": s["reachable"],
            "error": s["error"],
            "block": s.get("block"),
            "peers": s.get("peers"),
            "syncing": bool(s.get("syncing")),
            "sealer": bool(s.get("mining")) and etherbase in signers,
            "etherbase": etherbase,
        }
    return {
        "chain": {
            "head_block": best.get("block"),
            "head_hash": best.get("hash"),
            "last_block_time": best.get("block_time"),
            "last_block_time_iso": _iso(best.get("block_time")),
            "signers": signers,
            "signer_activity": {k.lower(): v for k, v in activity.items()},
        },
        "hosts": hosts,
    }


def network_status_lines(report: dict[str, Any]) -> list[str]:
    """One line for the chain and one per host, for the play's output."""
    chain = report["chain"]
    lines = [
        f"chain: head {chain['head_block']} at {chain['last_block_time_iso']}, "
        f"{len(chain['signers'])} signers: {' '.join(chain['signers'])}"
    ]
    for host, s in sorted(report["hosts"].items()):
        if not s["reachable"]:
            lines.append(f"{host}: UNREACHABLE ({s['error']})")
            continue
        role = "sealer" if s["sealer"] else "node"
        sync = "syncing" if s["syncing"] else "in sync"
        lines.append(f"{host}: {role}, block {s['block']}, {s['peers']} peers, {sync}")
    return lines


class FilterModule:
    """Ansible entry point."""

    def filters(self) -> dict:
        return {"network_status_report": network_status_report, "network_status_lines": network_status_lines}
