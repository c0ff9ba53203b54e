#!/usr/bin/env python3
"""Bring the HelioGrid lab up, show it, tear it down.

The lab is one rootful podman container per host of ``inventories/lab`` (image ``lab_image``,
address ``lab_address``) on one podman network, plus ``hg-mirror``, which serves the locally built
release archives over HTTP the way a download site would. Every object it creates carries the
label ``io.heliogrid.lab``; ``down`` removes only objects with that label.

    lab/lab.py up [HOST ...]     create or start the containers (all hosts by default)
    lab/lab.py status            show the containers and their state
    lab/lab.py down              remove the lab's containers and network, and empty inventories/lab/state
    lab/lab.py destroy HOST ...  remove these hosts' containers, as machines lost for good (`up HOST` makes new ones)

It is also the lab driver the tests and the benchmarks import (`from lab import lab`): run a playbook, run a
command in a host, read the inventory. Failures raise LabError; the command line prints them and exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = ROOT / "inventories" / "lab"
BIN = Path(sys.executable).parent
ENV = dict(
    os.environ,
    CONTAINERS_CONF=str(ROOT / "lab" / "containers.conf"),
    ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
    ANSIBLE_FORCE_COLOR="0",
    PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
)
LABEL = "io.heliogrid.lab"
LAB_NAME = "heliogrid"
PREFIX = "hg-"
MIRROR = "hg-mirror"
ADMIN_USER = "ops"
# systemd 257 (trixie) keeps CAP_SYS_ADMIN to sandbox a unit that runs as another user (ProtectSystem,
# PrivateTmp...); without it such units fail with 217/USER. A VM or a Pi has it, so lab hosts do too.
CAPABILITIES = ["SYS_ADMIN", "NET_ADMIN"]
# The kernel has no WireGuard module: wg-quick falls back to wireguard-go, which needs a TUN device (roles/wireguard).
DEVICES = ["/dev/net/tun"]
STATE = ROOT / ".lab"
CACHE = Path(
    os.environ.get("HELIOGRID_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "heliogrid"
)


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    image: str
    groups: tuple[str, ...]

    @property
    def container(self) -> str:
        return PREFIX + self.name


class LabError(RuntimeError):
    """A lab command failed: the message names it and says why."""


def podman(
    *args: str, check: bool = True, capture: bool = True, input: str | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run a podman command with the lab's settings; check=True raises LabError with podman's message."""
    result = subprocess.run(["podman", *args], env=ENV, text=True, capture_output=capture, input=input, timeout=timeout)
    if check and result.returncode != 0:
        raise LabError(f"podman {' '.join(args)} failed ({result.returncode}): {(result.stderr or '').strip()}")
    return result


def podman_exec(
    container: str, *cmd: str, check: bool = True, user: str | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess:
    """Run a command in a lab container (as `user` when given); check=True raises LabError on a non-zero exit."""
    options = ["--user", user] if user else []
    result = podman("exec", *options, container, *cmd, check=False, timeout=timeout)
    if check and result.returncode != 0:
        raise LabError(f"{container}: {' '.join(cmd)} failed ({result.returncode}): {result.stderr}")
    return result


RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)
CHANGED_LINE = re.compile(r"^changed: \[(?P<host>[^\]\s]+)(?: -> (?P<delegate>[^\](\s]+))?", re.MULTILINE)


@dataclass
class PlaybookRun:
    returncode: int
    output: str

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        return {
            m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
            for m in RECAP.finditer(self.output)
        }

    @property
    def changed(self) -> int:
        return sum(h["changed"] for h in self.recap.values())

    @property
    def changes(self) -> list[tuple[str, str]]:
        """(host, where) of each result line that reports a change: `where` is the host the task was delegated to
        (`changed: [miner1 -> miner3(hg-miner3)]`), else the host itself. Items of a loop each have their line."""
        return [(m["host"], m["delegate"] or m["host"]) for m in CHANGED_LINE.finditer(self.output)]


def playbook(path: str, *args: str, log: Path | None = None) -> PlaybookRun:
    """ansible-playbook from the repository root with the lab's settings; its output is kept in `log` if given."""
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), path, *args],
        env=ENV,
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(result.stdout)
    return PlaybookRun(result.returncode, result.stdout)


def cli(*args: str) -> str:
    """This command line (`up`, `down`, `status`) in a process of its own; returns its output, raises LabError."""
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args], env=ENV, cwd=ROOT, text=True, capture_output=True
    )
    if result.returncode != 0:
        raise LabError(f"lab.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def ansible_inventory(path: Path | None = None) -> dict:
    """`ansible-inventory --list` of an inventory (ansible.cfg's by default), group_vars resolved as Ansible does."""
    exe = shutil.which("ansible-inventory", path=str(BIN) + os.pathsep + os.environ["PATH"])
    if exe is None:
        raise LabError("ansible-inventory not found: run `make setup` first")
    source = ["-i", str(path)] if path else []
    listed = subprocess.run([exe, *source, "--list"], env=ENV, check=True, text=True, capture_output=True, cwd=ROOT)
    return json.loads(listed.stdout)


def hostvars(path: Path | None = None) -> dict[str, dict]:
    """Every host's variables in the inventory."""
    return ansible_inventory(path)["_meta"]["hostvars"]


def inventory_hosts(group: str, path: Path | None = None) -> list[str]:
    """The hosts of a group and of its children, in inventory order."""
    data = ansible_inventory(path)
    found: list[str] = []

    def walk(name: str) -> None:
        body = data.get(name, {})
        found.extend(h for h in body.get("hosts", []) if h not in found)
        for child in body.get("children", []):
            walk(child)

    walk(group)
    return found


def lab_setting(name: str) -> object:
    """A lab-wide setting of inventories/lab/group_vars/all/lab.yml (the network name, the subnet...)."""
    return yaml.safe_load((INVENTORY / "group_vars" / "all" / "lab.yml").read_text())[name]


def container_address(container: str, network: str) -> str:
    """The address a running container has on a podman network."""
    inspected = json.loads(podman("container", "inspect", container).stdout)[0]
    return inspected["NetworkSettings"]["Networks"][network]["IPAddress"]


def inventory(path: Path = INVENTORY) -> tuple[dict, list[LabHost]]:
    """The lab-wide settings and the hosts that have a lab_image."""
    data = ansible_inventory(path)
    variables = data["_meta"]["hostvars"]
    groups: dict[str, set[str]] = {}
    for group, body in data.items():
        for host in body.get("hosts", []) if isinstance(body, dict) else []:
            groups.setdefault(host, set()).add(group)
    hosts = []
    for name, hv in sorted(variables.items()):
        if "lab_image" not in hv:
            continue
        if "lab_address" not in hv:
            raise LabError(f"inventory host {name} has lab_image but no lab_address")
        hosts.append(LabHost(name, hv["lab_address"], hv["lab_image"], tuple(sorted(groups.get(name, ())))))
    settings = next(iter(variables.values()), {})
    return settings, hosts


def image_ref(image: str) -> str:
    return f"localhost/heliogrid/debian:{image}"


def exists(kind: str, name: str) -> bool:
    return podman(kind, "exists", name, check=False).returncode == 0


def ensure_network(name: str, subnet: str) -> None:
    if exists("network", name):
        labels = json.loads(podman("network", "inspect", name).stdout)[0].get("labels") or {}
        if labels.get(LABEL) != LAB_NAME:
            raise LabError(f"network {name} exists but was not created by the lab; remove or rename it")
        return
    gateway = subnet.rsplit(".", 1)[0] + ".1"
    podman("network", "create", "--label", f"{LABEL}={LAB_NAME}", "--subnet", subnet, "--gateway", gateway, name)
    print(f"lab: created network {name} ({subnet})")


def own_container(name: str) -> bool:
    if not exists("container", name):
        return False
    labels = json.loads(podman("container", "inspect", name).stdout)[0]["Config"].get("Labels") or {}
    if labels.get(LABEL) != LAB_NAME:
        raise LabError(f"container {name} exists but was not created by the lab; refusing to touch it")
    return True


def running(name: str) -> bool:
    out = podman("container", "inspect", "--format", "{{.State.Running}}", name, check=False)
    return out.stdout.strip() == "true"


def ensure_mirror(network: str, subnet: str) -> None:
    """The artifact mirror: a plain HTTP server over the cache of built archives, read-only."""
    (CACHE / "geth").mkdir(parents=True, exist_ok=True)
    if own_container(MIRROR):
        if not running(MIRROR):
            podman("start", MIRROR)
        return
    address = subnet.rsplit(".", 1)[0] + ".2"
    podman(
        "run",
        "-d",
        "--name",
        MIRROR,
        "--hostname",
        "mirror",
        "--network",
        network,
        "--ip",
        address,
        "--label",
        f"{LABEL}={LAB_NAME}",
        "-v",
        f"{CACHE}:/srv/mirror:ro",
        image_ref("trixie-amd64"),
        "python3",
        "-m",
        "http.server",
        "8080",
        "--directory",
        "/srv/mirror",
    )
    print(f"lab: started {MIRROR} ({address}:8080 serving {CACHE})")


def ssh_keypair() -> str:
    key = STATE / "ssh" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "heliogrid-lab-ops", "-f", str(key)], check=True
        )
    return (key.with_suffix(".pub")).read_text().strip()


def ensure_lab_secrets() -> None:
    """The lab's deployer key and, apart from it, the contracts' admin key: made once per checkout, each kept only in
    an ansible-vault file of its own (git-ignored).

    A production inventory keeps its own vaulted deployer key and never the admin key (that one stays offline); the
    lab makes both so that a fresh clone runs end to end, and the rotation playbook can be played in it.
    """
    folder = ROOT / "inventories" / "lab" / "group_vars" / "deployer"
    for name, variables in (
        ("vault.yml", ("vault_contracts_deployer_private_key", "vault_lab_deployer_address")),
        ("admin_vault.yml", ("vault_lab_admin_private_key", "vault_lab_admin_address")),
    ):
        vault_key(folder / name, *variables)


def vault_key(vault_file: Path, key_variable: str, address_variable: str) -> None:
    if vault_file.exists():
        return
    from eth_account import Account

    key = "0x" + secrets.token_hex(32)
    vault_file.parent.mkdir(parents=True, exist_ok=True)
    plain = (
        f"# Generated by lab/lab.py for this checkout's lab; encrypted with the lab vault identity.\n"
        f'{key_variable}: "{key}"\n'
        f'{address_variable}: "{Account.from_key(key).address}"\n'
    )
    vault = shutil.which("ansible-vault", path=str(Path(sys.executable).parent)) or "ansible-vault"
    old_umask = os.umask(0o077)
    try:
        subprocess.run(
            [
                vault,
                "encrypt",
                "--vault-id",
                f"lab@{ROOT / 'lab' / 'vault-password.sh'}",
                "--encrypt-vault-id",
                "lab",
                "--output",
                str(vault_file),
                "-",
            ],
            input=plain,
            text=True,
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
    finally:
        os.umask(old_umask)
    print(f"lab: generated a lab key into {vault_file.relative_to(ROOT)} (vaulted)")


def wait_booted(host: LabHost, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = podman("exec", host.container, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(1)
    raise LabError(f"{host.container}: systemd did not finish booting within {timeout:.0f}s (state: {state!r})")


def provision_admin(host: LabHost, pubkey: str) -> str:
    """What first boot does on a cloud image or a flashed Pi: an admin user with the ops key."""
    script = f"""set -e
id -u {ADMIN_USER} >/dev/null 2>&1 || useradd -m -s /bin/bash -G sudo {ADMIN_USER}
install -d -m 0700 -o {ADMIN_USER} -g {ADMIN_USER} /home/{ADMIN_USER}/.ssh
printf '%s\\n' '{pubkey}' > /home/{ADMIN_USER}/.ssh/authorized_keys
chown {ADMIN_USER}: /home/{ADMIN_USER}/.ssh/authorized_keys; chmod 0600 /home/{ADMIN_USER}/.ssh/authorized_keys
echo '{ADMIN_USER} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-{ADMIN_USER}; chmod 0440 /etc/sudoers.d/90-{ADMIN_USER}
systemctl start ssh.service
for i in $(seq 60); do [ -s /etc/ssh/ssh_host_ed25519_key.pub ] && break; sleep 1; done
cat /etc/ssh/ssh_host_ed25519_key.pub
"""
    host_key = podman("exec", host.container, "sh", "-c", script).stdout.strip().splitlines()[-1]
    return f"{host.address} {' '.join(host_key.split()[:2])}"


def up(only: Sequence[str] = (), extra: Sequence[LabHost] = ()) -> None:
    """Create or start the lab's containers (only those named, if any); `extra` are hosts no inventory lists."""
    settings, hosts = inventory()
    hosts = [*hosts, *extra]
    network, subnet = settings.get("lab_network", "heliogrid-lab"), settings.get("lab_subnet", "10.213.7.0/24")
    if only:
        unknown = set(only) - {h.name for h in hosts}
        if unknown:
            raise LabError(f"not lab hosts of inventories/lab: {', '.join(sorted(unknown))}")
        hosts = [h for h in hosts if h.name in only]
    missing = sorted({h.image for h in hosts if not exists("image", image_ref(h.image))})
    if missing:
        raise LabError(f"lab images missing: {', '.join(missing)} (run `make images`)")
    ensure_network(network, subnet)
    ensure_mirror(network, subnet)
    pubkey = ssh_keypair()
    ensure_lab_secrets()
    facts = ROOT / ".cache" / "facts"
    for host in hosts:
        if own_container(host.container):
            if not running(host.container):
                podman("start", host.container)
                print(f"lab: started {host.container}")
            current = podman("image", "inspect", "--format", "{{.Id}}", image_ref(host.image)).stdout.strip()
            used = podman("container", "inspect", "--format", "{{.Image}}", host.container).stdout.strip()
            if used != current:
                print(
                    f"lab: warning: {host.container} runs an older {host.image} image; "
                    "`make lab-down lab-up` recreates the lab from the current images"
                )
            continue
        podman(
            "run",
            "-d",
            "--name",
            host.container,
            "--hostname",
            host.name,
            "--network",
            network,
            "--ip",
            host.address,
            "--label",
            f"{LABEL}={LAB_NAME}",
            "--label",
            f"io.heliogrid.host={host.name}",
            "--systemd",
            "always",
            *[f"--cap-add={c}" for c in CAPABILITIES],
            *[f"--device={d}" for d in DEVICES],
            image_ref(host.image),
            "/sbin/init",
        )
        (facts / host.name).unlink(missing_ok=True)  # a new container is a new machine
        print(f"lab: created {host.container} ({host.image}, {host.address})")
    known = []
    for host in hosts:
        wait_booted(host)
        known.append(provision_admin(host, pubkey))
    known_hosts = STATE / "ssh" / "known_hosts"
    previous = known_hosts.read_text().splitlines() if known_hosts.exists() else []
    addresses = {line.split()[0] for line in known}
    kept = [line for line in previous if line.split()[0] not in addresses]
    known_hosts.write_text("\n".join(kept + known) + "\n")
    print(f"lab: {len(hosts)} host(s) up; SSH key {STATE / 'ssh' / 'id_ed25519'}")


def containers() -> list[dict]:
    out = podman("ps", "-a", "--filter", f"label={LABEL}={LAB_NAME}", "--format", "json").stdout
    return json.loads(out or "[]")


def status() -> None:
    rows = containers()
    if not rows:
        print("lab: no lab containers (run `make lab-up`)")
        return
    print(f"{'CONTAINER':14} {'STATE':10} {'IMAGE':40} ADDRESS")
    for c in sorted(rows, key=lambda c: c["Names"][0]):
        name = c["Names"][0]
        addr = ""
        if c["State"] == "running":
            nets = json.loads(podman("container", "inspect", name).stdout)[0]["NetworkSettings"]["Networks"]
            addr = ", ".join(n.get("IPAddress", "") for n in nets.values())
        print(f"{name:14} {c['State']:10} {c['Image']:40} {addr}")


def down() -> None:
    """Remove the lab: its containers, network and cached facts, and what plays recorded on the controller for it.

    The chain goes with its containers, so contracts.json (addresses on that chain), the ethstats credentials and
    the backups describe nothing that exists any more: kept, the next `up` and site.yml would stop on a contract
    recorded at an address with no code.
    """
    names = [c["Names"][0] for c in containers()]
    if names:
        podman("rm", "-f", "-t", "5", *names)
        print(f"lab: removed {', '.join(sorted(names))}")
    listed = podman("network", "ls", "--filter", f"label={LABEL}={LAB_NAME}", "--format", "json").stdout
    nets = json.loads(listed or "[]")
    for net in nets:
        podman("network", "rm", net["name"])
        print(f"lab: removed network {net['name']}")
    shutil.rmtree(ROOT / ".cache" / "facts", ignore_errors=True)
    clear_state()
    print("lab: cleared what the controller recorded for it (inventories/lab/state)")


def destroy(names: Sequence[str]) -> None:
    """Remove these hosts' containers and their cached facts: machines lost for good. `up` makes new, empty ones."""
    for name in names:
        container = PREFIX + name
        if not own_container(container):
            raise LabError(f"{container} is not a container of this lab")
        podman("rm", "-f", "-t", "5", container)
        (ROOT / ".cache" / "facts" / name).unlink(missing_ok=True)
        print(f"lab: destroyed {container}")


def clear_state() -> None:
    """Forget what plays recorded on the controller for the lab (contracts.json, ethstats/...): start empty."""
    state = INVENTORY / "state"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="create or start the lab containers")
    p_up.add_argument("hosts", nargs="*", help="inventory hosts to bring up (default: all)")
    sub.add_parser("status", help="show the lab containers")
    sub.add_parser("down", help="remove the lab containers and network, and empty inventories/lab/state")
    p_destroy = sub.add_parser("destroy", help="remove some hosts' containers (machines lost for good)")
    p_destroy.add_argument("hosts", nargs="+", help="inventory hosts whose containers to remove")
    args = parser.parse_args()
    try:
        if args.command == "up":
            up(args.hosts)
        elif args.command == "status":
            status()
        elif args.command == "destroy":
            destroy(args.hosts)
        else:
            down()
    except LabError as exc:
        raise SystemExit(f"lab: {exc}") from None


if __name__ == "__main__":
    main()
