#!/usr/bin/python
"""Ansible module: one sealer's vote to add or remove a Clique signer, through its geth's IPC socket."""

from __future__ import annotations

DOCUMENTATION = r"""
module: clique_vote
short_description: Vote a Clique signer in or out from one sealer's node, and wait for the chain to take it
description:
  - Talks JSON-RPC to the sealer's geth over its IPC socket (clique_getSigners, clique_proposals, clique_propose,
    clique_discard).
  - If the chain's signers already agree with O(state), nothing is proposed and the task reports ok; a proposal
    this node still holds for the signer is withdrawn, so that it never votes again.
  - Otherwise it first checks that more than half of the current signers are among O(voters) (the sealers of this
    run), then proposes. With O(wait) it waits until the chain has taken the vote and withdraws the proposal.
  - Run it on every voting sealer without O(wait), then again with O(wait), since a vote passes only once more than
    half of the signers have proposed it.
  - Supports check mode, in which nothing is proposed or withdrawn.
options:
  signer: {description: Address of the signer to add or remove (0x and 40 hex digits)., type: str, required: true}
  state:
    description: C(present) votes the signer in, C(absent) votes it out.
    type: str
    choices: [present, absent]
    default: present
  voter:
    description: This node's sealer address; a node that is not a signer does not vote.
    type: str
    required: true
  voters:
    description: Sealer addresses of every node voting in this run; more than half of the signers must be among them.
    type: list
    elements: str
    required: true
  ipc_path: {description: geth's IPC socket., type: path, default: /var/lib/geth/geth.ipc}
  wait:
    description: Wait until the chain's signers agree with O(state), then withdraw the proposal.
    type: bool
    default: false
  timeout: {description: Seconds to wait with O(wait)., type: int, default: 300}
"""

EXAMPLES = r"""
- name: Propose miner4's sealer on every current sealer
  clique_vote:
    signer: "{{ hostvars['miner4'].clique_sealer_address }}"
    voter: "{{ clique_sealer_address }}"
    voters: "{{ ansible_play_hosts | map('extract', hostvars, 'clique_sealer_address') | list }}"

- name: Wait until the chain has taken the vote
  clique_vote:
    signer: "{{ hostvars['miner4'].clique_sealer_address }}"
    voter: "{{ clique_sealer_address }}"
    voters: "{{ ansible_play_hosts | map('extract', hostvars, 'clique_sealer_address') | list }}"
    wait: true
"""

RETURN = r"""
signers: {description: The chain's signers (lower case) when the module finished., type: list, returned: always}
proposed:
  description: This node proposed the change in this run (or would have, in check mode).
  type: bool
  returned: always
withdrawn: {description: This node withdrew its proposal for the signer., type: bool, returned: always}
"""

import json  # noqa: E402 - Ansible modules put DOCUMENTATION first
import re  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")


class GethIPC:
    """A JSON-RPC connection to geth's IPC socket."""

    def __init__(self, path: str, timeout: float = 30) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            raise ConnectionError(f"cannot connect to geth's IPC socket {path}: {exc}") from exc
        self.buffer = ""
        self.next_id = 0

    def call(self, method: str, *params: object) -> object:
        self.next_id += 1
        request = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}
        self.sock.sendall(json.dumps(request).encode())
        decoder = json.JSONDecoder()
        while True:
            text = self.buffer.lstrip()
            try:
                reply, end = decoder.raw_decode(text)
            except ValueError:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"geth closed {self.path} during {method}") from None
                self.buffer += chunk.decode()
                continue
            self.buffer = text[end:]
            if reply.get("id") != self.next_id:
                continue  # a subscription notice or a stale reply
            if "error" in reply:
                raise RuntimeError(f"{method} failed on {self.path}: {reply['error'].get('message', reply['error'])}")
            return reply.get("result")

    def signers(self) -> list[str]:
        return [s.lower() for s in self.call("clique_getSigners")]

    def proposals(self) -> dict[str, bool]:
        return {a.lower(): v for a, v in (self.call("clique_proposals") or {}).items()}

    def close(self) -> None:
        self.sock.close()


def address(module: AnsibleModule, name: str, value: str) -> str:
    if not ADDRESS.match(value.lower()):
        module.fail_json(msg=f"{name} must be 0x and 40 hex digits, got {value!r}")
    return value.lower()


def vote(module: AnsibleModule, geth: GethIPC) -> dict:
    p = module.params
    signer = address(module, "signer", p["signer"])
    voter = address(module, "voter", p["voter"])
    voters = {address(module, "voters", v) for v in p["voters"]}
    add = p["state"] == "present"
    result = {"changed": False, "proposed": False, "withdrawn": False}

    signers = geth.signers()
    if (signer in signers) != add:
        able = sorted(voters & set(signers))
        if len(able) <= len(signers) // 2:
            module.fail_json(
                msg=f"only {len(able)} of the {len(signers)} signers ({', '.join(able) or 'none'}) vote in this run; "
                "a vote needs more than half: bring the others up first",
                signers=signers,
                **result,
            )
        if voter in signers and geth.proposals().get(signer) is not add:
            result.update(changed=True, proposed=True)
            if not module.check_mode:
                geth.call("clique_propose", signer, add)
        if not p["wait"] or module.check_mode:
            return {**result, "signers": signers}
        deadline = time.monotonic() + p["timeout"]
        while (signer in signers) != add:
            if time.monotonic() > deadline:
                module.fail_json(
                    msg=f"the chain did not take the vote to {'add' if add else 'remove'} {signer} within "
                    f"{p['timeout']} s (signers: {', '.join(signers)}); the proposals stand",
                    signers=signers,
                    **result,
                )
            time.sleep(1)
            signers = geth.signers()
    # The vote has passed: a proposal left in place would vote again if the signer set changed back.
    if signer in geth.proposals():
        result.update(changed=True, withdrawn=True)
        if not module.check_mode:
            geth.call("clique_discard", signer)
    return {**result, "signers": signers}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "signer": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "voter": {"type": "str", "required": True},
            "voters": {"type": "list", "elements": "str", "required": True},
            "ipc_path": {"type": "path", "default": "/var/lib/geth/geth.ipc"},
            "wait": {"type": "bool", "default": False},
            "timeout": {"type": "int", "default": 300},
        },
        supports_check_mode=True,
    )
    try:
        geth = GethIPC(module.params["ipc_path"])
    except ConnectionError as exc:
        module.fail_json(msg=str(exc))
    try:
        module.exit_json(**vote(module, geth))
    except (ConnectionError, RuntimeError, OSError) as exc:
        module.fail_json(msg=str(exc))
    finally:
        geth.close()


if __name__ == "__main__":
    main()
