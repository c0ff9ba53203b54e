"""The restore plan of playbooks/restore.yml: put back what a replaced host lacks, never over a different key."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from heliogrid_testing.plugins import plugin

backup = plugin("plugins/filter/backup.py")

NODEKEY = {"path": "/var/lib/geth/geth/nodekey", "pw_name": "geth", "gr_name": "geth", "mode": "0600"}
AGENT_DB = {"path": "/var/lib/heliogrid-agent/agent.db", "pw_name": "heliogrid-agent", "gr_name": "x", "mode": "0600"}


def stats(*entries: tuple[dict, str | None]) -> dict:
    """A registered stat loop: each manifest entry with its file's sha256 (None: absent)."""
    return {
        "results": [
            {"item": e, "stat": {"exists": True, "checksum": c} if c else {"exists": False}} for e, c in entries
        ]
    }


def test_a_file_the_host_lacks_is_put_back_with_its_owner_and_mode() -> None:
    plan = backup.restore_plan(stats((NODEKEY, None)), stats((NODEKEY, "aa")), [])
    assert plan == {"missing": [NODEKEY], "conflicts": [], "kept": []}


def test_an_equal_key_is_kept_so_a_second_run_changes_nothing() -> None:
    plan = backup.restore_plan(stats((NODEKEY, "aa")), stats((NODEKEY, "aa")), [])
    assert plan == {"missing": [], "conflicts": [], "kept": [NODEKEY["path"]]}


def test_a_different_key_on_the_host_is_a_conflict_not_overwritten() -> None:
    plan = backup.restore_plan(stats((NODEKEY, "bb")), stats((NODEKEY, "aa")), [])
    assert plan == {"missing": [], "conflicts": [NODEKEY["path"]], "kept": []}


def test_the_hosts_own_database_is_newer_than_the_backup_and_is_kept() -> None:
    plan = backup.restore_plan(stats((AGENT_DB, "bb")), stats((AGENT_DB, "aa")), [AGENT_DB["path"]])
    assert plan == {"missing": [], "conflicts": [], "kept": [AGENT_DB["path"]]}


def test_an_archive_lacking_a_file_its_manifest_lists_is_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="the archive lacks /var/lib/geth/geth/nodekey"):
        backup.restore_plan(stats((NODEKEY, None)), stats((NODEKEY, None)), [])
