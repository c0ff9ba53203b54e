"""What the bad-input table runs against, each with a snapshot of everything the input could have changed.

- inventory variables: the real playbooks, applied by ansible-playbook to a throwaway systemd container
  (`podman diff` and the digests of the files it lists, before and after, plus the play recap);
- agent configurations: the agent's real entry point on a Pi's files in a temporary directory (every file's
  bytes and mode, before and after, for a new Pi and for one with a counter database);
- contract calls: the contracts on the in-process EVM of tests/contracts (supply, balances, allowances, meter
  records, offers and settings, before and after).

Every outcome also lands in test-results/bad_inputs.md: one table of what each input was told.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from heliogrid_testing import ROOT
from heliogrid_testing.evm import KWH, Chain, describe_revert, revert_data
from lab import lab

AGENT_SRC = ROOT / "files" / "pi_agent" / "src"  # this tree's agent, for the agent's own entry point


RESULTS = ROOT / "test-results"


IMAGE = "localhost/heliogrid/debian:trixie-amd64"


HOST = "badinput"  # the container's inventory name, in every group the playbooks target
PER_HOST = ("overlay_address", "host_public_address")  # variables an inventory sets per host, not for all


BOOTED = ("running", "degraded")  # systemctl is-system-running once boot is over


@dataclass(frozen=True)
class Inventory:
    """Inventory variables as an operator writes them in group_vars, and the playbook they are applied with."""

    playbook: str
    variables: dict[str, Any]
    # Other Pis of the inventory (name: host variables). They are never reached: the controller's checks come first.
    pis: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __str__(self) -> str:
        shown = ", ".join(f"{k}: {'(not set)' if v is UNSET else json.dumps(v)}" for k, v in self.variables.items())
        others = "".join(f"; Pi {name}: {json.dumps(hostvars)}" for name, hostvars in self.pis.items())
        return f"{shown}{others} (playbooks/{self.playbook})"


UNSET = object()  # an inventory variable the operator's inventory lacks


@dataclass(frozen=True)
class Raw:
    """A value written into agent.toml verbatim, as a hand edit would leave it."""

    text: str


@dataclass(frozen=True)
class AgentToml:
    """Edits of a Pi's valid agent.toml: `section.key` to a value (a path may use {pi}, the Pi's root)."""

    edits: dict[str, Any]

    def __str__(self) -> str:
        return "; ".join(f"{key} = {toml_value(value)}" for key, value in self.edits.items())


@dataclass(frozen=True, init=False)
class Call:
    """A transaction `sender` sends, e.g. Call("outsider", "market.reportProduction", 5000).

    Arguments naming an account of the scene ("meter", "owner", ...) are replaced by its address."""

    sender: str
    function: str
    args: tuple[Any, ...] = ()

    def __init__(self, sender: str, function: str, *args: Any) -> None:
        object.__setattr__(self, "sender", sender)
        object.__setattr__(self, "function", function)
        object.__setattr__(self, "args", args)

    def __str__(self) -> str:
        return f"{self.sender} -> {self.function}({', '.join(str(a) for a in self.args)})"


@dataclass
class Outcome:
    """What a bad input was told, and whether it was refused with nothing changed."""

    message: str
    refused: bool
    changes: list[str] = field(default_factory=list)  # what differs between the snapshots; empty: nothing changed


class ThrowawayHost:
    """A systemd container from the lab's trixie image, with no network, that the playbooks are applied to."""

    def __init__(self, container: str, workdir: Path) -> None:
        self.container = container
        self.workdir = workdir
        self.runs = 0
        self.last: dict[str, str] | None = None  # the snapshot after the previous case: the next one's "before"
        (workdir / "vault-password").write_text("not-a-secret\n")
        record = workdir / "contracts.json"  # what pi_agent.yml needs on the controller before it checks anything
        record.write_text(json.dumps({"chainId": 424242, "market": {"address": "0x" + "11" * 20, "abi": []}}))
        self.baseline: dict[str, Any] = {
            "ansible_connection": "containers.podman.podman",
            "ansible_host": container,
            "ansible_user": "root",
            "ansible_python_interpreter": "/usr/bin/python3",
            "heliogrid_state_dir": str(workdir),
            # A valid network (inventories/lab/group_vars/all/network.yml, with this host as the only sealer).
            "clique_genesis_chain_id": 424242,
            "clique_genesis_period": 5,
            "clique_genesis_sealers": [HOST],
            "geth_network_id": "{{ clique_genesis_chain_id }}",
            "geth_archive_url_base": "http://127.0.0.1:9/geth",
            "geth_archive_sha256": {"amd64": "5" * 64},
            # A valid Pi (inventories/lab/group_vars/pis/pi_agent.yml).
            "pi_agent_sensor": "simulated",
            "pi_agent_capacity_watts": 1000,
            "pi_agent_owner_address": "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF",
            "pi_agent_contracts_record": str(record),
            "pi_agent_ui_listen_address": "192.168.1.31",
            "pi_agent_pip_find_links": ["file:///srv/wheels/"],
            "pi_agent_pip_no_index": True,
            "pi_agent_package_sha256": "a" * 64,
            # A valid stats host (inventories/lab/group_vars/all/wheelhouse.yml).
            "stats_app_pip_find_links": ["file:///srv/wheels/"],
            "stats_app_pip_no_index": True,
            "stats_app_package_sha256": "b" * 64,
            # A valid deployer (inventories/lab/group_vars/deployer/contracts.yml and its vault).
            "contracts_deployer_private_key": "{{ vault_contracts_deployer_private_key }}",
            "vault_contracts_deployer_private_key": "0x" + "00" * 31 + "01",
            "contracts_admin_address": "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF",
            # A valid overlay (inventories/lab/group_vars/all/overlay.yml): this host is a hub (it is in miners).
            "overlay_subnet": "10.77.0.0/24",
            "overlay_address": "10.77.0.11",
            "host_public_address": "192.0.2.11",
            "wireguard_underlay_subnets": ["10.213.7.0/24"],
        }

    def inventory(self, variables: dict[str, Any], pis: dict[str, dict[str, Any]] | None = None) -> Path:
        """The baseline with `variables` on top, as the container's inventory: this host is in every group, and `pis`
        are further Pis (never reached)."""
        self.runs += 1
        merged = {**self.baseline, **variables}
        hostvars = {k: v for k, v in merged.items() if v is not UNSET}
        # A host's own addresses are its host variables, as in hosts.yml: the other Pis must not inherit them.
        own = {k: hostvars.pop(k) for k in PER_HOST if k in hostvars}
        groups = {group: {"hosts": {HOST: own}} for group in ("miners", "stats", "pis", "deployer")}
        groups["pis"]["hosts"].update(pis or {})
        path = self.workdir / f"hosts-{self.runs}.yml"
        path.write_text(yaml.safe_dump({"all": {"vars": hostvars, "children": groups}}))
        return path

    def ansible(self, program: str, *args: str) -> subprocess.CompletedProcess:
        env = {
            **lab.ENV,
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
            # Not the lab's fact cache: the container's own, filled once by warm_up. The playbooks gather facts
            # `smart`ly, so a case skips the 4 to 6 s of gathering (the container's facts do not change between
            # cases: the snapshots prove it) and goes straight to the checks it is about.
            "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile",
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(self.workdir / "facts"),
            # Nothing here is vaulted: a password of its own rather than the lab's (lab/vault-password.sh).
            "ANSIBLE_VAULT_IDENTITY_LIST": f"bad_inputs@{self.workdir / 'vault-password'}",
        }
        program = str(lab.BIN / program)
        return subprocess.run(
            [program, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900, check=False
        )

    def warm_up(self) -> None:
        """Ansible leaves its remote temporary directory behind on the first connection: make it before the cases.
        The same connection gathers the facts every playbook asks for (gather_subset min, network) into the cache."""
        play = self.workdir / "gather.yml"
        gather = {"name": "Gather the facts the playbooks gather", "hosts": HOST, "gather_facts": True}
        play.write_text(yaml.safe_dump([{**gather, "gather_subset": ["min", "network"]}]))
        run = self.ansible("ansible-playbook", "-i", str(self.inventory({})), str(play))
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        cached = list((self.workdir / "facts").glob(f"*{HOST}"))  # the file name has a prefix of Ansible's
        assert cached, f"no facts of {HOST} cached in {self.workdir / 'facts'}:\n{run.stdout[-2000:]}"

    def apply(self, playbook: str, variables: dict[str, Any], pis: dict[str, dict[str, Any]] | None = None) -> Outcome:
        inventory = self.inventory(variables, pis)
        # Nothing runs in the container between cases (its timers are stopped), so the previous case's "after"
        # is this case's "before"; anything that did change in between would be blamed on this case, not missed.
        before = self.last if self.last is not None else self.snapshot()
        run = self.ansible("ansible-playbook", "-i", str(inventory), str(ROOT / "playbooks" / playbook))
        after = self.last = self.snapshot()
        try:
            result = json.loads(run.stdout)
        except ValueError:  # Ansible stopped before the first play: its message is on stderr
            return Outcome(run.stderr.strip(), run.returncode != 0, diff(before, after))
        stats = result.get("stats", {}).get(HOST, {})
        changes = diff(before, after)
        if stats.get("changed"):
            changes.append(f"the play recap reports changed={stats['changed']}")
        # The controller's own checks (localhost) count: they refuse a plan before any host is reached.
        failures = sum(host.get("failures", 0) for host in result.get("stats", {}).values())
        refused = run.returncode != 0 and failures > 0
        return Outcome(failure_messages(result) or run.stderr.strip(), refused, changes)

    def snapshot(self) -> dict[str, str]:
        """What the container's file system holds beyond its image: `podman diff`, with the bytes of each file."""
        listed = json.loads(lab.podman("diff", "--format", "json", self.container).stdout or "{}")
        state = {path: kind for kind, paths in listed.items() for path in paths or []}
        digests = lab.podman(
            "exec", "-i", self.container, "sh", "-c",
            'while IFS= read -r f; do if [ -f "$f" ] && [ ! -L "$f" ]; then sha256sum "$f"; fi; done',
            input="\n".join(state) + "\n",
        ).stdout  # fmt: skip
        for line in digests.splitlines():
            digest, path = line.split(maxsplit=1)
            state[path] += f" sha256:{digest}"
        return state


def failure_messages(result: dict[str, Any]) -> str:
    """The messages of the failed tasks (and of a looped check's failed items) in a json-callback result."""
    messages = []
    for play in result.get("plays", []):
        for task in play["tasks"]:
            for res in task["hosts"].values():
                if not res.get("failed"):
                    continue
                msg = res.get("msg", "")
                items = [r.get("msg", "") for r in res.get("results", []) if r.get("failed")]
                argument_errors = [e for e in res.get("argument_errors", []) if e not in msg]  # usually in msg already
                parts = [msg, *items, *argument_errors]
                messages.append(" ".join(p.strip() for p in parts if p and p.strip() != "One or more items failed"))
    return " ".join(messages)


def diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    keys = sorted(set(before) | set(after))
    return [
        f"{k}: {before.get(k, 'absent')} -> {after.get(k, 'absent')}" for k in keys if before.get(k) != after.get(k)
    ]


def toml_value(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)  # a TOML basic string is a JSON string for the values used here


class Pi:
    """A Pi's agent files as the role lays them out, under one temporary directory ({pi})."""

    def __init__(self, root: Path, keys: Path, counter: bool) -> None:
        self.root = root
        for name in ("etc", "state"):
            (root / name).mkdir(parents=True)
        shutil.copy2(keys / "keystore.json", root / "state" / "keystore.json")
        shutil.copy2(keys / "password", root / "etc" / "password")
        (root / "etc" / "contracts.json").write_text(
            json.dumps({"chainId": 424242, "market": {"address": "0x" + "11" * 20, "abi": []}})
        )
        if counter:  # a Pi that has been measuring: its counter must survive a bad restart byte for byte
            from heliogrid_agent.store import Store

            store = Store(root / "state" / "agent.db")
            store.record_sample(1_234_000_000, 1_234_000_000, "2026-06-21", 1_782_000_000.0)
            store.close()
        self.config = {
            "meter": {"sensor": "simulated", "interval_seconds": 1},
            "sensor.simulated": {"panels": 4, "panel_peak_watts": 250},
            "chain": {
                "rpc_url": "http://127.0.0.1:9",
                "contracts_file": "{pi}/etc/contracts.json",
                "keystore": "{pi}/state/keystore.json",
                "password_file": "{pi}/etc/password",
            },
            "store": {"path": "{pi}/state/agent.db"},
            "ui": {"enabled": False, "listen_address": "127.0.0.1"},
            "metrics": {"enabled": False},
            "gpio": {"pin_factory": "mock"},
            "log": {"target": "stderr"},
        }

    def write_config(self, edits: dict[str, Any]) -> Path:
        sections = {name: dict(keys) for name, keys in self.config.items()}
        for dotted, value in edits.items():
            section, key = dotted.rsplit(".", 1)
            sections.setdefault(section, {})[key] = value
        lines = []
        for section, keys in sections.items():
            lines.append(f"[{section}]")
            lines += [f"{key} = {toml_value(value).replace('{pi}', str(self.root))}" for key, value in keys.items()]
        path = self.root / "etc" / "agent.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def snapshot(self) -> dict[str, str]:
        return {
            str(p.relative_to(self.root)): f"{p.stat().st_mode:o} sha256:{hashlib.sha256(p.read_bytes()).hexdigest()}"
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }


class AgentRunner:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.keys = workdir / "keys"
        self.runs = 0
        run = self._agent(
            "keygen", "--keystore", str(self.keys / "keystore.json"), "--password-file", str(self.keys / "password")
        )
        assert run.returncode == 0, run.stderr

    def _agent(self, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(AGENT_SRC), os.environ.get("PYTHONPATH", "")])}
        return subprocess.run(
            [sys.executable, "-m", "heliogrid_agent", *args],
            capture_output=True, text=True, env=env, timeout=30, check=False,
        )  # fmt: skip

    def run(self, edits: dict[str, Any]) -> Outcome:
        """`heliogrid-agent run` with the edited configuration, on a new Pi and on one with a counter."""
        messages, refused, changes = [], True, []
        for counter in (False, True):
            self.runs += 1
            pi = Pi(self.workdir / f"pi-{self.runs}", self.keys, counter)
            config = pi.write_config(edits)
            before = pi.snapshot()
            try:
                run = self._agent("-c", str(config), "run")
            except subprocess.TimeoutExpired:
                return Outcome("the agent started and ran for 30 s", False, ["the agent ran"])
            after = pi.snapshot()
            refused = refused and run.returncode != 0
            messages.append(run.stderr.strip().replace(str(pi.root), "{pi}"))
            where = "a Pi with a counter" if counter else "a new Pi"
            changes += [f"{where}: {line}" for line in diff(before, after)]
        message = messages[0] if messages[0] == messages[1] else " / ".join(messages)
        return Outcome(message, refused, changes)


PRICE = 3 * 10**17  # token base units per kWh the owner asks


class Scene:
    """The deployed contracts with one meter registered, 4 kWh reported and offered, and a buyer holding tokens
    (without having approved the market)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        registered_at = chain.register()
        chain.send(chain.market.functions.setAskPrice(PRICE), chain.owner)
        chain.report(4 * KWH, at=registered_at + 4000)  # offer 1: 4 kWh at PRICE
        chain.send(chain.token.functions.transfer(chain.buyer, 5 * 10**18), chain.owner)
        self.accounts = {
            name: getattr(chain, name) for name in ("admin", "registrar", "meter", "owner", "buyer", "outsider")
        }
        self.accounts["market"] = chain.market.address
        roles = ("DEFAULT_ADMIN_ROLE", "REGISTRAR_ROLE", "TARIFF_ROLE", "PAUSER_ROLE")
        self.roles = {"0x" + getattr(chain.market.functions, role)().call().hex(): role for role in roles}

    def call(self, call: Call) -> Outcome:
        contract_name, function = call.function.split(".")
        contract = getattr(self.chain, contract_name)
        args = [self.accounts.get(a, a) if isinstance(a, str) else a for a in call.args]
        before = self.state()
        try:
            getattr(contract.functions, function)(*args).transact({"from": self.accounts[call.sender]})
        except Exception as exc:  # eth-tester and web3 raise different types
            try:
                message = describe_revert(revert_data(exc), self.chain.market, self.chain.token)
            except AssertionError:
                message = f"{type(exc).__name__}: {exc}"
            refused = True
        else:
            message, refused = "the call succeeded", False
        message = self.name_addresses(message)
        return Outcome(message, refused, diff(before, self.state()))

    def name_addresses(self, text: str) -> str:
        """Accounts and roles by name: what the message means to a reader of the table."""
        for value, name in [*((a, n) for n, a in self.accounts.items()), *self.roles.items()]:
            text = re.sub(re.escape(value), name, text, flags=re.IGNORECASE)
        return text

    def state(self) -> dict[str, str]:
        """Everything a call could change, by name; not the nonces."""
        c, token, market = self.chain, self.chain.token.functions, self.chain.market.functions
        registrar = market.REGISTRAR_ROLE().call()
        state = {
            "block number": c.w3.eth.block_number,
            "token supply": token.totalSupply().call(),
            "next offer id": market.nextOfferId().call(),
            "tariff": market.tariff().call(),
            "tolerance": market.tolerancePercent().call(),
            "paused": market.paused().call(),
        }
        for name, address in self.accounts.items():
            state[f"{name}: ether"] = c.w3.eth.get_balance(address)
            state[f"{name}: tokens"] = token.balanceOf(address).call()
            state[f"{name}: allowance to the market"] = token.allowance(address, c.market.address).call()
            state[f"{name}: meter record"] = market.getMeter(address).call()
            state[f"{name}: purchased kWh"] = market.purchasedKWh(address).call()
            state[f"{name}: ask price"] = market.askPrice(address).call()
            state[f"{name}: registrar"] = market.hasRole(registrar, address).call()
        for offer in range(1, state["next offer id"]):
            state[f"offer {offer}"] = market.getOffer(offer).call()
        return {key: str(value) for key, value in state.items()}


class Report:
    """test-results/bad_inputs.md: every case in table order with the message it was given. Rows of cases not run
    in this session (the unit tier runs the agent and contract cases, the integration tier the inventory ones) are
    kept from earlier runs, through test-results/bad_inputs.json."""

    def __init__(self) -> None:
        self.path = RESULTS / "bad_inputs.json"
        self.rows: dict[str, dict[str, Any]] = {}
        with contextlib.suppress(OSError, ValueError):
            self.rows = {row["key"]: row for row in json.loads(self.path.read_text())}

    def record(self, case: Any, outcome: Outcome) -> None:
        self.rows[key(case)] = {
            "key": key(case),
            "kind": case.kind,
            "case": case.name,
            "input": str(case.bad),
            "expected": case.expect,
            "message": outcome.message,
            "ok": outcome.refused and case.expect in outcome.message and not outcome.changes,
            "when": time.strftime("%Y-%m-%d %H:%M"),
        }

    def write(self, cases: list[Any]) -> None:
        order = {key(case): i for i, case in enumerate(cases)}
        rows = sorted((r for r in self.rows.values() if r["key"] in order), key=lambda r: order[r["key"]])
        RESULTS.mkdir(exist_ok=True)
        self.path.write_text(json.dumps(rows, indent=1) + "\n")
        lines = [
            "# Bad inputs: what each was told",
            "",
            "Written by tests/bad_inputs, one row per case of its table. The last column says whether the input was",
            "refused with the expected message and nothing changed, and when that was seen.",
            "",
            "| # | kind | case | malformed input | message seen | refused, nothing changed |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            verdict = "yes" if r["ok"] else "**NO**"
            lines.append(
                f"| {order[r['key']] + 1} | {r['kind']} | {cell(r['case'])} | `{cell(r['input'])}` | "
                f"{cell(r['message'])} | {verdict} ({r['when']}) |"
            )
        missing = [key(case) for case in cases if key(case) not in self.rows]
        if missing:
            lines += ["", f"Not run yet: {'; '.join(missing)}."]
        (RESULTS / "bad_inputs.md").write_text("\n".join(lines) + "\n")


def key(case: Any) -> str:
    return f"{case.kind}: {case.name}"


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
