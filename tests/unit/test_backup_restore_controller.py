"""backup.yml and restore.yml on the controller itself (the deployer's deployment record), and restore.yml's refusals,
which come before it reaches a host: these run without the lab. The lab's round trip of a sealer is
tests/system/test_day2.py."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from lab import lab

pytestmark = pytest.mark.slow

SECRET = "0x" + "5e" * 20  # stands for what the record holds; it must not be readable in the archive


@pytest.fixture
def record(tmp_path: Path) -> Path:
    path = tmp_path / "state" / "contracts.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"chain_id": 424242, "market": SECRET}))
    return path


def run(playbook: str, tmp_path: Path, record: Path, *args: str) -> lab.PlaybookRun:
    variables = ["-e", f"backup_dir={tmp_path / 'backups'}", "-e", f"contracts_record_path={record}"]
    return lab.playbook(f"playbooks/{playbook}", *variables, *args)


def test_the_deployment_record_is_archived_encrypted_and_restored_once(tmp_path: Path, record: Path) -> None:
    original = record.read_bytes()
    backup = run("backup.yml", tmp_path, record, "--limit", "localhost")
    assert backup.returncode == 0, backup.output[-3000:]
    latest = tmp_path / "backups" / "localhost" / "latest.tar.gz.vault"
    archive = latest.resolve()
    assert archive.parent == latest.parent
    assert archive.name.endswith("Z.tar.gz.vault")
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert archive.read_bytes().startswith(b"$ANSIBLE_VAULT;1.")
    assert SECRET not in backup.output

    record.unlink()
    restored = run("restore.yml", tmp_path, record, "--limit", "localhost")
    assert restored.returncode == 0, restored.output[-3000:]
    assert record.read_bytes() == original
    assert restored.recap["localhost"]["changed"] == 1
    assert SECRET not in restored.output

    again = run("restore.yml", tmp_path, record, "--limit", "localhost")
    assert again.returncode == 0, again.output[-3000:]
    assert again.recap["localhost"]["changed"] == 0


def test_restore_refuses_a_record_changed_since_the_backup_and_leaves_it(tmp_path: Path, record: Path) -> None:
    assert run("backup.yml", tmp_path, record, "--limit", "localhost").returncode == 0
    record.write_text('{"chain_id": 1}')
    refused = run("restore.yml", tmp_path, record, "--limit", "localhost")
    assert refused.returncode != 0
    assert "already holds" in refused.output
    assert "different from the" in refused.output
    assert record.read_text() == '{"chain_id": 1}'


def test_restore_refuses_a_host_without_an_archive_before_reaching_it(tmp_path: Path, record: Path) -> None:
    refused = run("restore.yml", tmp_path, record, "--limit", "miner2")
    assert refused.returncode != 0
    expected = f"No backup archive for miner2 at {tmp_path / 'backups' / 'miner2' / 'latest.tar.gz.vault'}"
    assert expected in " ".join(refused.output.split())
    assert refused.recap["miner2"] == {"ok": 1, "changed": 0, "unreachable": 0, "failed": 1}


def test_restore_refuses_another_hosts_archive_before_reaching_the_host(tmp_path: Path, record: Path) -> None:
    assert run("backup.yml", tmp_path, record, "--limit", "localhost").returncode == 0
    other = tmp_path / "backups" / "localhost" / "latest.tar.gz.vault"
    refused = run("restore.yml", tmp_path, record, "--limit", "miner2", "-e", f"restore_archive={other}")
    assert refused.returncode != 0
    assert "is the backup of localhost" in " ".join(refused.output.split())
    assert refused.recap["miner2"]["unreachable"] == 0
    assert refused.recap["miner2"]["changed"] == 0
