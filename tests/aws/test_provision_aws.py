"""Issues #7 and #14: the AWS side of a network, provisioned, re-run, grown, listed and torn down on moto; its
security groups open SSH to the operator, WireGuard to the world, the stats page, and nothing of geth.

The lifecycle tests run in file order against one moto server: each step builds on the previous one,
as an operator's runs would. Bad-input tests point the modules at a closed port: had any task called
AWS before the check, the run would end in a connection error instead of the check's message.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from heliogrid_testing.aws import NETWORK, OPERATOR_CIDR, Ansible, AnsibleRun, free_port

pytestmark = pytest.mark.slow

# Each cloud host's address in the overlay_subnet of inventories/aws (10.77.0.0/22): miner-N .10+N, stats-N .20+N.
OVERLAY_ADDRESSES = {
    f"{NETWORK}-miner-1": "10.77.0.11",
    f"{NETWORK}-miner-2": "10.77.0.12",
    f"{NETWORK}-miner-3": "10.77.0.13",
    f"{NETWORK}-stats-1": "10.77.0.21",
}
OVERLAY_TAG = "heliogrid_overlay_address"
GETH_P2P = 30303
ACCOUNT = "123456789012"  # moto's account: the owner of the AMIs a test registers
OTHER = "othernet"  # another HelioGrid network in the same account, which teardown must not touch
NETWORK_TAG = "tag:heliogrid_network"


@dataclass(frozen=True)
class Amis:
    older: str
    newer: str
    wrong_name: str


@dataclass(frozen=True)
class Decoys:
    untagged_vpc: str
    other_network_vpc: str
    other_network_group: str
    instance: str
    allocation: str
    key_name: str


def live(instances: list[dict]) -> list[dict]:
    return [i for i in instances if i["State"]["Name"] not in ("terminated", "shutting-down")]


def instances_of(ec2, network: str) -> dict[str, dict]:
    """Live instances tagged with the network, by Name tag."""
    pages = ec2.describe_instances(Filters=[{"Name": NETWORK_TAG, "Values": [network]}])["Reservations"]
    found = live([i for r in pages for i in r["Instances"]])
    return {tag["Value"]: i for i in found for tag in i.get("Tags", []) if tag["Key"] == "Name"}


def tag(resource: dict, key: str) -> str | None:
    return next((t["Value"] for t in resource.get("Tags", []) if t["Key"] == key), None)


def by_tag(call, key: str, network: str = NETWORK) -> list[dict]:
    return call(Filters=[{"Name": NETWORK_TAG, "Values": [network]}])[key]


def provision_vars(public_key: Path, **overrides: object) -> list[str]:
    settings: dict[str, object] = {
        "aws_vpc_ssh_cidrs": [OPERATOR_CIDR],
        "aws_instances_ssh_public_key_file": str(public_key),
        "aws_instances_ami_owner": ACCOUNT,
        "aws_instances_miner_count": 2,
    }
    settings.update(overrides)
    return ["-e", json.dumps(settings)]


@pytest.fixture(scope="module")
def amis(ec2) -> Amis:
    """Two Debian 13 images a second apart and a newer image of another name, owned by the test account."""
    base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]  # one of moto's built-in AMIs
    scratch = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    images = []
    for name in ("debian-13-amd64-20250101-1", "debian-13-amd64-20250601-2", "debian-12-amd64-20250701-3"):
        if images:
            time.sleep(1.1)  # creation dates have a one-second resolution; "newest" must be unambiguous
        images.append(ec2.create_image(InstanceId=scratch, Name=name)["ImageId"])
    ec2.terminate_instances(InstanceIds=[scratch])
    return Amis(older=images[0], newer=images[1], wrong_name=images[2])


@pytest.fixture(scope="module")
def decoys(ec2, amis: Amis) -> Decoys:
    """Resources the teardown must leave: untagged, or tagged with another network's name."""
    other_tags = [{"Key": "heliogrid_network", "Value": OTHER}]
    untagged_vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    other_vpc = ec2.create_vpc(
        CidrBlock="10.98.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": other_tags}]
    )["Vpc"]["VpcId"]
    group = ec2.create_security_group(
        GroupName=f"{OTHER}-nodes",
        Description="another network",
        VpcId=other_vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": other_tags}],
    )["GroupId"]
    instance = ec2.run_instances(
        ImageId=amis.newer,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [*other_tags, {"Key": "heliogrid_role", "Value": "miner"}, {"Key": "Name", "Value": "x-1"}],
            }
        ],
    )["Instances"][0]["InstanceId"]
    allocation = ec2.allocate_address(
        Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": other_tags}]
    )["AllocationId"]
    ec2.associate_address(AllocationId=allocation, InstanceId=instance)
    ec2.create_key_pair(KeyName=f"{OTHER}-operator")
    return Decoys(untagged_vpc, other_vpc, group, instance, allocation, f"{OTHER}-operator")


@pytest.fixture(scope="module")
def first_provision(ansible: Ansible, operator_public_key: Path, decoys: Decoys) -> AnsibleRun:
    result = ansible.playbook("provision_aws.yml", *provision_vars(operator_public_key))
    assert result.returncode == 0, result.explain()
    return result


# --- bad input: fails with a message naming the value, before any AWS call ---------------------------


def closed_endpoint_vars() -> list[str]:
    url = f"http://127.0.0.1:{free_port()}"
    return ["-e", json.dumps({"aws_vpc_endpoint_url": url, "aws_instances_endpoint_url": url})]


def assert_refused_before_aws(result: AnsibleRun, *expected: str) -> None:
    assert result.returncode != 0, result.explain()
    for text in expected:
        assert text in result.output, f"expected {text!r} in the failure:\n{result.explain()}"
    assert "Could not connect to the endpoint URL" not in result.output, result.explain()


def test_missing_region_is_refused_before_any_aws_call(ansible: Ansible, operator_public_key: Path) -> None:
    env = {k: v for k, v in ansible.env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    result = ansible.playbook(
        "provision_aws.yml", *provision_vars(operator_public_key), *closed_endpoint_vars(), env=env
    )
    assert_refused_before_aws(result, "aws_vpc_region is ''", "export AWS_REGION")


def test_ssh_open_to_the_world_is_refused_without_override(ansible: Ansible, operator_public_key: Path) -> None:
    result = ansible.playbook(
        "provision_aws.yml",
        *provision_vars(operator_public_key, aws_vpc_ssh_cidrs=["0.0.0.0/0"]),
        *closed_endpoint_vars(),
    )
    assert_refused_before_aws(result, 'aws_vpc_ssh_cidrs is ["0.0.0.0/0"]', "aws_vpc_ssh_allow_anywhere=true")


def test_missing_ssh_cidr_is_refused(ansible: Ansible, operator_public_key: Path) -> None:
    result = ansible.playbook(
        "provision_aws.yml", *provision_vars(operator_public_key, aws_vpc_ssh_cidrs=[]), *closed_endpoint_vars()
    )
    assert_refused_before_aws(result, "aws_vpc_ssh_cidrs is []")


def test_zero_miners_is_refused_before_any_aws_call(ansible: Ansible, operator_public_key: Path) -> None:
    result = ansible.playbook(
        "provision_aws.yml",
        *provision_vars(operator_public_key, aws_instances_miner_count=0),
        *closed_endpoint_vars(),
    )
    assert_refused_before_aws(result, "aws_instances_miner_count is 0", "at least 1 sealer")


def test_missing_public_key_is_refused_before_any_aws_call(ansible: Ansible, tmp_path: Path) -> None:
    result = ansible.playbook("provision_aws.yml", *provision_vars(tmp_path / "absent.pub"), *closed_endpoint_vars())
    assert_refused_before_aws(result, f"aws_instances_ssh_public_key_file is '{tmp_path / 'absent.pub'}'")


# Ansible prints each message as YAML: quotes inside it are doubled and long lines wrapped, so the expected parts
# are short and quote-free. A malformed CIDR is the cidr test's (tests/unit/test_value_tests.py).
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"aws_vpc_wireguard_port": 70000}, ["aws_vpc_wireguard_port is 70000", "between 1 and 65535"]),
        ({"aws_instances_overlay_subnet": "10.77.0.5/22"}, ["aws_instances_overlay_subnet is", "10.77.0.5/22"]),
        # 14 host numbers, and stats-1 takes host number 21
        ({"aws_instances_overlay_subnet": "10.77.0.0/28"}, ["aws_instances_overlay_subnet 10.77.0.0/28 is too small"]),
    ],
    ids=["wireguard-port", "overlay-host-bits", "overlay-too-small"],
)
def test_a_bad_wireguard_port_or_overlay_subnet_is_refused_before_any_aws_call(
    ansible: Ansible, operator_public_key: Path, overrides: dict, expected: list[str]
) -> None:
    result = ansible.playbook(
        "provision_aws.yml", *provision_vars(operator_public_key, **overrides), *closed_endpoint_vars()
    )
    assert_refused_before_aws(result, *expected)


@pytest.mark.parametrize("confirmation", ["", OTHER])
def test_teardown_without_the_network_name_as_confirmation_is_refused(ansible: Ansible, confirmation: str) -> None:
    result = ansible.playbook("teardown_aws.yml", "-e", f"aws_teardown_confirm={confirmation}", *closed_endpoint_vars())
    assert_refused_before_aws(result, f"aws_teardown_confirm is '{confirmation}'", f"aws_teardown_confirm={NETWORK}")


# --- the lifecycle: provision, re-run, grow, inventory, teardown ------------------------------------


def test_provision_builds_a_public_subnet_routed_through_a_tagged_gateway(first_provision: AnsibleRun, ec2) -> None:
    (vpc,) = by_tag(ec2.describe_vpcs, "Vpcs")
    assert vpc["CidrBlock"] == "10.42.0.0/16"
    (subnet,) = by_tag(ec2.describe_subnets, "Subnets")
    assert subnet["VpcId"] == vpc["VpcId"]
    assert subnet["MapPublicIpOnLaunch"] is True
    (gateway,) = by_tag(ec2.describe_internet_gateways, "InternetGateways")
    assert [a["VpcId"] for a in gateway["Attachments"]] == [vpc["VpcId"]]
    (table,) = by_tag(ec2.describe_route_tables, "RouteTables")
    assert {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": gateway["InternetGatewayId"]}.items() <= next(
        r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"
    ).items()
    assert subnet["SubnetId"] in [a.get("SubnetId") for a in table["Associations"]]


def rules(group: dict) -> set[tuple[str, int, int, str]]:
    return {
        (p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIp"])
        for p in group["IpPermissions"]
        for r in p.get("IpRanges", [])
    }


def security_groups(ec2) -> dict[str, dict]:
    return {g["GroupName"]: g for g in by_tag(ec2.describe_security_groups, "SecurityGroups")}


def assert_closed_to_all_but_ssh_wireguard_and_web(groups: dict[str, dict]) -> None:
    """The groups issue #14 asks for: nothing of geth (p2p 30303, RPC 8545) reachable, by any protocol."""
    assert set(groups) == {f"{NETWORK}-nodes", f"{NETWORK}-web"}
    assert rules(groups[f"{NETWORK}-nodes"]) == {("tcp", 22, 22, OPERATOR_CIDR), ("udp", 51820, 51820, "0.0.0.0/0")}
    assert rules(groups[f"{NETWORK}-web"]) == {("tcp", 80, 80, "0.0.0.0/0"), ("tcp", 443, 443, "0.0.0.0/0")}
    for group in groups.values():
        assert not [p for p in group["IpPermissions"] if p["IpProtocol"] == "-1"], group["GroupName"]
        assert all(p.get("Ipv6Ranges", []) == [] for p in group["IpPermissions"]), group["GroupName"]
        for proto, low, high, _ in rules(group):
            for port in (GETH_P2P, 8545):
                assert not low <= port <= high, f"{group['GroupName']} opens geth's {port} ({proto} {low}-{high})"


def test_ssh_is_open_to_the_operator_wireguard_to_the_world_web_to_stats_only(first_provision: AnsibleRun, ec2) -> None:
    assert_closed_to_all_but_ssh_wireguard_and_web(security_groups(ec2))

    hosts = instances_of(ec2, NETWORK)
    group_names = {name: {g["GroupName"] for g in i["SecurityGroups"]} for name, i in hosts.items()}
    assert group_names == {
        f"{NETWORK}-miner-1": {f"{NETWORK}-nodes"},
        f"{NETWORK}-miner-2": {f"{NETWORK}-nodes"},
        f"{NETWORK}-stats-1": {f"{NETWORK}-nodes", f"{NETWORK}-web"},
    }


def test_each_host_is_tagged_with_its_overlay_address(first_provision: AnsibleRun, ec2) -> None:
    hosts = instances_of(ec2, NETWORK)
    assert {name: tag(i, OVERLAY_TAG) for name, i in hosts.items()} == {
        name: OVERLAY_ADDRESSES[name] for name in (f"{NETWORK}-miner-1", f"{NETWORK}-miner-2", f"{NETWORK}-stats-1")
    }


def test_each_host_runs_the_newest_debian_ami_with_its_own_elastic_ip(
    first_provision: AnsibleRun, ec2, amis: Amis
) -> None:
    hosts = instances_of(ec2, NETWORK)
    assert {name: tag(i, "heliogrid_role") for name, i in hosts.items()} == {
        f"{NETWORK}-miner-1": "miner",
        f"{NETWORK}-miner-2": "miner",
        f"{NETWORK}-stats-1": "stats",
    }
    assert {i["ImageId"] for i in hosts.values()} == {amis.newer}
    assert {i["KeyName"] for i in hosts.values()} == {f"{NETWORK}-operator"}
    assert {i["State"]["Name"] for i in hosts.values()} == {"running"}

    addresses = {a["InstanceId"]: a for a in by_tag(ec2.describe_addresses, "Addresses")}
    assert set(addresses) == {i["InstanceId"] for i in hosts.values()}
    for name, instance in hosts.items():
        assert instance["PublicIpAddress"] == addresses[instance["InstanceId"]]["PublicIp"], name
        assert tag(addresses[instance["InstanceId"]], "Name") == name

    (key,) = by_tag(ec2.describe_key_pairs, "KeyPairs")
    assert key["KeyName"] == f"{NETWORK}-operator"


def test_every_instance_boots_from_an_encrypted_volume_deleted_with_it(first_provision: AnsibleRun, ec2) -> None:
    hosts = instances_of(ec2, NETWORK)
    for name, instance in hosts.items():
        mapped = instance["BlockDeviceMappings"]
        assert mapped, f"{name} has no EBS volume"
        ids = [m["Ebs"]["VolumeId"] for m in mapped]
        volumes = ec2.describe_volumes(VolumeIds=ids)["Volumes"]
        assert [(v["Encrypted"], v["Size"]) for v in volumes] == [(True, 20)] * len(ids), name
        assert all(m["Ebs"]["DeleteOnTermination"] for m in mapped), name


def test_second_run_changes_nothing(first_provision: AnsibleRun, ansible: Ansible, operator_public_key: Path) -> None:
    result = ansible.playbook("provision_aws.yml", *provision_vars(operator_public_key))
    assert result.returncode == 0, result.explain()
    assert result.changed == 0, result.explain()


@dataclass(frozen=True)
class Grown:
    before: dict[str, dict]
    run: AnsibleRun


@pytest.fixture(scope="module")
def grown(first_provision: AnsibleRun, ansible: Ansible, operator_public_key: Path, ec2, amis: Amis) -> Grown:
    """A third sealer, by a re-run on a network left as one from before issue #14 would be: geth p2p open to the
    world on the nodes' group, and miner-1 without an overlay address."""
    before = instances_of(ec2, NETWORK)
    ec2.authorize_security_group_ingress(
        GroupId=security_groups(ec2)[f"{NETWORK}-nodes"]["GroupId"],
        IpPermissions=[
            {"IpProtocol": proto, "FromPort": GETH_P2P, "ToPort": GETH_P2P, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
            for proto in ("tcp", "udp")
        ],
    )
    assert ("udp", GETH_P2P, GETH_P2P, "0.0.0.0/0") in rules(security_groups(ec2)[f"{NETWORK}-nodes"])
    ec2.delete_tags(Resources=[before[f"{NETWORK}-miner-1"]["InstanceId"]], Tags=[{"Key": OVERLAY_TAG}])
    assert tag(instances_of(ec2, NETWORK)[f"{NETWORK}-miner-1"], OVERLAY_TAG) is None
    # The new sealer boots the AMI given by id; the running ones keep theirs.
    result = ansible.playbook(
        "provision_aws.yml",
        *provision_vars(operator_public_key, aws_instances_miner_count=3, aws_instances_ami_id=amis.older),
    )
    assert result.returncode == 0, result.explain()
    return Grown(before, result)


def test_growing_the_miner_count_adds_a_sealer_and_touches_no_other(grown: Grown, ec2, amis: Amis) -> None:
    assert grown.run.changed > 0, grown.run.explain()
    after = instances_of(ec2, NETWORK)
    assert set(after) == {*grown.before, f"{NETWORK}-miner-3"}
    for name, instance in grown.before.items():
        assert after[name]["InstanceId"] == instance["InstanceId"], name
        assert after[name]["PublicIpAddress"] == instance["PublicIpAddress"], name
        assert after[name]["ImageId"] == amis.newer, name
    new = after[f"{NETWORK}-miner-3"]
    assert new["ImageId"] == amis.older
    assert new["PublicIpAddress"] in {a["PublicIp"] for a in by_tag(ec2.describe_addresses, "Addresses")}
    assert new["PublicIpAddress"] not in {i["PublicIpAddress"] for i in grown.before.values()}
    assert tag(new, OVERLAY_TAG) == OVERLAY_ADDRESSES[f"{NETWORK}-miner-3"]


def test_a_rerun_closes_an_old_p2p_rule_and_tags_an_instance_without_overlay_address(grown: Grown, ec2) -> None:
    assert_closed_to_all_but_ssh_wireguard_and_web(security_groups(ec2))
    miner = instances_of(ec2, NETWORK)[f"{NETWORK}-miner-1"]
    assert miner["InstanceId"] == grown.before[f"{NETWORK}-miner-1"]["InstanceId"]
    assert tag(miner, OVERLAY_TAG) == OVERLAY_ADDRESSES[f"{NETWORK}-miner-1"]


def unwrap(value: object) -> object:
    """ansible-inventory marks values from AWS as unsafe: {"__ansible_unsafe": "..."}."""
    if isinstance(value, dict) and set(value) == {"__ansible_unsafe"}:
        return value["__ansible_unsafe"]
    return value


def test_inventory_groups_hosts_by_role_tag_at_their_elastic_ips_and_overlay_addresses(
    grown: Grown, ansible: Ansible, ec2
) -> None:
    result = ansible.run("ansible-inventory", "-i", "inventories/aws", "--list")
    assert result.returncode == 0, result.explain()
    inventory = json.loads(result.stdout)
    hosts = instances_of(ec2, NETWORK)
    miners = {name for name in hosts if tag(hosts[name], "heliogrid_role") == "miner"}

    assert set(inventory["miners"]["hosts"]) == miners == {f"{NETWORK}-miner-{n}" for n in (1, 2, 3)}
    assert inventory["stats"]["hosts"] == [f"{NETWORK}-stats-1"]
    assert set(inventory["cloud"]["children"]) == {"miners", "stats"}
    assert inventory["deployer"]["hosts"] == ["localhost"]
    hostvars = inventory["_meta"]["hostvars"]
    assert "x-1" not in hostvars, "another network's instance leaked into this network's inventory"
    for name, instance in hosts.items():
        assert unwrap(hostvars[name]["ansible_host"]) == instance["PublicIpAddress"], name
        assert unwrap(hostvars[name]["host_public_address"]) == instance["PublicIpAddress"], name
        assert unwrap(hostvars[name]["overlay_address"]) == OVERLAY_ADDRESSES[name], name
        assert hostvars[name]["ansible_user"] == "admin", name


def test_teardown_removes_everything_tagged_and_nothing_else(
    first_provision: AnsibleRun, ansible: Ansible, ec2, decoys: Decoys
) -> None:
    result = ansible.playbook("teardown_aws.yml", "-e", f"aws_teardown_confirm={NETWORK}")
    assert result.returncode == 0, result.explain()

    assert instances_of(ec2, NETWORK) == {}
    for call, key in (
        (ec2.describe_addresses, "Addresses"),
        (ec2.describe_key_pairs, "KeyPairs"),
        (ec2.describe_security_groups, "SecurityGroups"),
        (ec2.describe_route_tables, "RouteTables"),
        (ec2.describe_subnets, "Subnets"),
        (ec2.describe_internet_gateways, "InternetGateways"),
        (ec2.describe_vpcs, "Vpcs"),
    ):
        assert by_tag(call, key) == [], f"{key} tagged {NETWORK} left after teardown"

    vpcs = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
    assert {decoys.untagged_vpc, decoys.other_network_vpc} <= vpcs
    assert ec2.describe_security_groups(GroupIds=[decoys.other_network_group])["SecurityGroups"]
    (decoy,) = [
        i for r in ec2.describe_instances(InstanceIds=[decoys.instance])["Reservations"] for i in r["Instances"]
    ]
    assert decoy["State"]["Name"] == "running"
    (address,) = ec2.describe_addresses(AllocationIds=[decoys.allocation])["Addresses"]
    assert address["InstanceId"] == decoys.instance
    assert [k["KeyName"] for k in ec2.describe_key_pairs(KeyNames=[decoys.key_name])["KeyPairs"]] == [decoys.key_name]


def test_teardown_again_finds_nothing_to_remove(first_provision: AnsibleRun, ansible: Ansible) -> None:
    result = ansible.playbook("teardown_aws.yml", "-e", f"aws_teardown_confirm={NETWORK}")
    assert result.returncode == 0, result.explain()
    assert result.changed == 0, result.explain()
