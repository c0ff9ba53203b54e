"""The AWS inventory's network settings render for every host, the Pis of a sibling inventory included.

The EC2 hosts come from the aws_ec2 source in production; here a static file stands in for it (same groups, the
hostvars that source sets), next to a Pis inventory as docs/operator-guide-aws.md lays them out.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from heliogrid_testing.ansible_config import show

ROOT = Path(__file__).resolve().parents[2]
DEPLOYER = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"
SHOWN = "[clique_genesis_sealers, clique_genesis_alloc, heliogrid_state_dir, geth_ethstats_url, geth_archive_sha256]"


def render(tmp_path: Path, stats_vars: dict[str, str]) -> dict[str, list]:
    inventories = tmp_path / "inventories"
    shutil.copytree(ROOT / "inventories" / "aws", inventories / "aws", ignore=shutil.ignore_patterns("*aws_ec2.yml"))
    ec2 = {
        "miners": {"hosts": {f"solar-miner-{n}": {"host_public_address": f"192.0.2.{n}"} for n in (1, 2, 3)}},
        "stats": {
            "hosts": {
                "solar-stats-1": {"host_public_address": "192.0.2.21", "overlay_address": "10.77.0.21", **stats_vars}
            }
        },
    }
    (inventories / "aws" / "ec2.yml").write_text(yaml.safe_dump({"all": {"children": {"cloud": {"children": ec2}}}}))
    (inventories / "pis").mkdir()
    (inventories / "pis" / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": {"pis": {"hosts": {"pi-1": {}}}}}})
    )
    return show(
        tmp_path, ["inventories/aws", "inventories/pis"], "all", SHOWN, "-e", f"vault_deployer_address={DEPLOYER}"
    )


# Reports go to the stats host's overlay address, inside WireGuard, with or without TLS on its public side.
@pytest.mark.parametrize(
    ("stats_vars", "scheme"),
    [({}, "ws://10.77.0.21:80"), ({"stats_app_tls_certificate": "/etc/ssl/c.pem"}, "ws://10.77.0.21:80")],
)
def test_every_host_gets_the_chain_state_folder_the_stats_server_and_a_secret_of_its_own(
    tmp_path, stats_vars, scheme
) -> None:
    hosts = render(tmp_path, stats_vars)
    assert set(hosts) == {"solar-miner-1", "solar-miner-2", "solar-miner-3", "solar-stats-1", "pi-1", "localhost"}
    for host, (sealers, alloc, state_dir, ethstats, sha256) in hosts.items():
        assert sealers == ["solar-miner-1", "solar-miner-2", "solar-miner-3"], host
        assert alloc == {DEPLOYER: "1000000000000000000000000"}, host
        assert state_dir == str(tmp_path / "inventories" / "aws" / "state"), host
        assert re.fullmatch(rf"{re.escape(host)}:[A-Za-z0-9]{{40}}@{re.escape(scheme)}", ethstats), (host, ethstats)
        assert sha256 == {"amd64": "", "arm64": ""}, "the example must not ship digests nobody checked"
    secrets = {host: ethstats.split("@")[0].split(":")[1] for host, (*_, ethstats, _) in hosts.items()}
    assert len(set(secrets.values())) == len(hosts), "every node must present a secret of its own"
    for host, secret in secrets.items():
        stored = tmp_path / "inventories" / "aws" / "state" / "ethstats" / f"{host}.secret"
        assert stored.stat().st_mode & 0o077 == 0, host
        assert stored.read_text().strip() == secret, host
