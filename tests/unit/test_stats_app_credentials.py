"""The stats role and the stats app agree on a node's ethstats credential: the role (tasks/ethstats_node.yml) checks
the node's name with the app's own pattern and writes the record the app reads, with Ansible's hash filter."""

from __future__ import annotations

import re
from pathlib import Path

from ansible.plugins.filter.core import get_hash
from heliogrid_stats.credentials import NODE_NAME, Credentials, matches

ROOT = Path(__file__).resolve().parents[2]
TASKS = (ROOT / "roles" / "stats_app" / "tasks" / "ethstats_node.yml").read_text()


def test_the_role_checks_node_names_with_the_apps_pattern() -> None:
    assert f"stats_app_ethstats_node_name is match('{NODE_NAME.pattern}')" in TASKS


def test_the_record_the_role_writes_admits_that_secret_and_no_other(tmp_path) -> None:
    content = re.search(r'content: "sha256:\{\{ stats_app_ethstats_node_secret \| hash\(\'sha256\'\) \}\}"', TASKS)
    assert content, "ethstats_node.yml no longer writes sha256:<hash('sha256') of the secret>"
    secret = "Zq3V9pW2mXc8LrT5yB7nK4dF6hJ1sA0gE2uQ9wR3"  # as the inventories' password lookup makes them
    record = tmp_path / "pi4"
    record.write_text("sha256:" + get_hash(secret, "sha256"))
    record.chmod(0o640)
    digest = Credentials(tmp_path).digest("pi4")
    assert digest is not None
    assert matches(secret, digest)
    assert not matches(secret[:-1], digest)
