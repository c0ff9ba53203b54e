"""Filters for playbooks/restore.yml: which of a backup's files a host lacks, and which it holds differently.

restore.yml stats every file of the archive's manifest twice, on the host and in the unpacked archive on the
controller (sha256 both), and gives both lists of registered results to ``restore_plan``.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError


def restore_plan(on_host: dict[str, Any], in_archive: dict[str, Any], state_files: list[str]) -> dict[str, list]:
    """``{"missing": [manifest entry...], "conflicts": [path...], "kept": [path...]}``.

    missing: files the host does not have, to put back. conflicts: keys the host holds with another content (a key
    made since the backup: restoring over it, or keeping it, must be the operator's decision). kept: state files the
    host already has (its own database is newer than the backup's) and files equal to the backup's.
    """
    host_results, saved_results = on_host.get("results", []), in_archive.get("results", [])
    if len(host_results) != len(saved_results):
        raise AnsibleFilterError(
            f"restore_plan: {len(host_results)} files stat'ed on the host, {len(saved_results)} in the archive"
        )
    plan: dict[str, list] = {"missing": [], "conflicts": [], "kept": []}
    for host, saved in zip(host_results, saved_results, strict=True):
        entry = host["item"]
        if not saved.get("stat", {}).get("exists"):
            raise AnsibleFilterError(f"restore_plan: the archive lacks {entry['path']}, which its manifest lists")
        if not host.get("stat", {}).get("exists"):
            plan["missing"].append(entry)
        elif entry["path"] in state_files or host["stat"].get("checksum") == saved["stat"].get("checksum"):
            plan["kept"].append(entry["path"])
        else:
            plan["conflicts"].append(entry["path"])
    return plan


class FilterModule:
    """Ansible entry point."""

    def filters(self) -> dict:
        return {"restore_plan": restore_plan}
