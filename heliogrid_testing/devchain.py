"""A real single-sealer Clique chain on loopback, for tests that need geth rather than an in-process EVM.

It runs the same geth release archive the roles install (from the lab's build cache), with a
genesis built like the roles' (Clique, London rules, no Shanghai), in the production topology: a
sealer that unlocks its key with a password file and therefore has no HTTP-RPC (geth refuses
`--unlock` with HTTP enabled), and a non-sealing node peered with it through a static node whose
HTTP-RPC listens on 127.0.0.1 — the node a Pi's agent or the stats app talks to.

    with DevChain(tmp_path, prefund=[address]) as chain:
        w3 = Web3(Web3.HTTPProvider(chain.rpc_url))
        chain.stop_rpc(); chain.start_rpc()   # the RPC node goes away and comes back; the chain goes on

Use ``devchain`` (pytest fixture, function scope) from ``heliogrid_testing.fixtures``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from eth_keys import keys

from heliogrid_testing import processes
from lab.geth_defaults import geth_release

GETH_VERSION = os.environ.get("HELIOGRID_GETH_VERSION", geth_release()[0])
GETH_COMMIT8 = geth_release()[1]
CACHE = Path(
    os.environ.get("HELIOGRID_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "heliogrid"
)
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
# A fixed, public test key: the dev chain's sealer. Never use it anywhere else.
SEALER_KEY = "0x" + "5e" * 32
SEALER_NODEKEY = "5f" * 32
PASSWORD = "devchain"


class GethNotBuilt(RuntimeError):
    pass


def geth_binary() -> Path:
    """The geth of the cached release archive, unpacked once next to it."""
    name = f"geth-linux-{ARCH}-{GETH_VERSION}-{GETH_COMMIT8}"
    archive = CACHE / "geth" / GETH_VERSION / f"{name}.tar.gz"
    binary = CACHE / "geth" / GETH_VERSION / "unpacked" / name / "geth"
    if binary.exists():
        return binary
    if not archive.exists():
        raise GethNotBuilt(f"{archive} is missing: run `make geth` first")
    with tarfile.open(archive) as tar:
        tar.extractall(binary.parent.parent, filter="data")
    binary.chmod(0o755)
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clique_extradata(sealers: list[str]) -> str:
    return "0x" + "00" * 32 + "".join(a.lower().removeprefix("0x") for a in sealers) + "00" * 65


def genesis(chain_id: int, period: int, sealer: str, prefund: list[str], gas_limit: int = 30_000_000) -> dict:
    forks = [
        "homestead",
        "eip150",
        "eip155",
        "eip158",
        "byzantium",
        "constantinople",
        "petersburg",
        "istanbul",
        "muirGlacier",
        "berlin",
        "london",
        "arrowGlacier",
        "grayGlacier",
    ]
    return {
        "config": {
            "chainId": chain_id,
            **{f"{f}Block": 0 for f in forks},
            "clique": {"period": period, "epoch": 30000},
        },
        "difficulty": "0x1",
        "gasLimit": hex(gas_limit),
        "extradata": clique_extradata([sealer]),
        "alloc": {a.lower().removeprefix("0x"): {"balance": hex(10**24)} for a in [sealer, *prefund]},
    }


@dataclass
class DevChain:
    workdir: Path
    prefund: list[str] = field(default_factory=list)
    chain_id: int = 1337
    period: int = 1
    rpc_port: int = 0
    # Extra geth flags per node ("sealer", "rpc"), e.g. {"rpc": ["--ethstats", "rpc:secret@ws://127.0.0.1:9"]}.
    extra_args: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sealer = Account.from_key(SEALER_KEY)
        self.rpc_port = self.rpc_port or free_port()
        self.p2p_port = free_port()
        self.processes: dict[str, subprocess.Popen] = {}
        if not (self.workdir / "sealer" / "geth" / "chaindata").exists():
            self._init()

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    def log(self, node: str) -> Path:
        return self.workdir / f"{node}.log"

    def _init(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "password").write_text(PASSWORD)
        (self.workdir / "password").chmod(0o600)
        keystore = self.workdir / "sealer" / "keystore"
        keystore.mkdir(parents=True)
        encrypted = Account.encrypt(SEALER_KEY, PASSWORD, kdf="scrypt", iterations=2**10)
        (keystore / f"sealer-{self.sealer.address.lower()}.json").write_text(json.dumps(encrypted))
        (self.workdir / "sealer" / "nodekey").write_text(SEALER_NODEKEY)
        gfile = self.workdir / "genesis.json"
        gfile.write_text(json.dumps(genesis(self.chain_id, self.period, self.sealer.address, self.prefund)))
        for node in ("sealer", "rpc"):
            subprocess.run(
                [str(geth_binary()), "--datadir", str(self.workdir / node), "init", str(gfile)],
                check=True,
                capture_output=True,
            )

    def _common(self, node: str) -> list[str]:
        return [
            str(geth_binary()),
            "--datadir",
            str(self.workdir / node),
            "--networkid",
            str(self.chain_id),
            "--nodiscover",
            "--ipcdisable",
            "--authrpc.port",
            str(free_port()),
            "--verbosity",
            "2",
        ]

    def _spawn(self, node: str, args: list[str]) -> None:
        if node in self.processes and self.processes[node].poll() is None:
            return
        with self.log(node).open("ab") as log:
            self.processes[node] = subprocess.Popen(
                self._common(node) + args + self.extra_args.get(node, []), stdout=log, stderr=subprocess.STDOUT
            )

    def start_sealer(self) -> None:
        self._spawn(
            "sealer",
            [
                "--port",
                str(self.p2p_port),
                "--nat",
                "extip:127.0.0.1",
                "--mine",
                "--miner.etherbase",
                self.sealer.address,
                "--unlock",
                self.sealer.address,
                "--password",
                str(self.workdir / "password"),
            ],
        )

    def start_rpc(self, timeout: float = 60) -> None:
        pubkey = keys.PrivateKey(bytes.fromhex(SEALER_NODEKEY)).public_key.to_hex()[2:]
        config = self.workdir / "rpc.toml"
        config.write_text(f'[Node.P2P]\nStaticNodes = ["enode://{pubkey}@127.0.0.1:{self.p2p_port}"]\n')
        # geth dials a static node once and, if that fails, again only 35 s later (p2p dialHistoryExpiration):
        # start the RPC node once the sealer listens.
        self._wait(self._sealer_listens, timeout, "sealer")
        self._spawn(
            "rpc",
            [
                "--config",
                str(config),
                "--port",
                str(free_port()),
                # geth syncs from fewer than min(5, maxpeers) peers only after a 10 s force-sync timer; the RPC
                # node has exactly one peer, the sealer, so it syncs at once when the two are peered.
                "--maxpeers",
                "1",
                "--http",
                "--http.addr",
                "127.0.0.1",
                "--http.port",
                str(self.rpc_port),
                "--http.api",
                "eth,net,web3,clique,txpool",
            ],
        )
        self._wait(lambda: self.block_number() >= 1, timeout, "rpc")

    def start(self, timeout: float = 60) -> DevChain:
        self.start_sealer()
        self.start_rpc(timeout)
        return self

    def _wait(self, ready, timeout: float, node: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"geth {name} exited with {process.returncode}: {self.log(name).read_text()[-2000:]}"
                    )
            if ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"dev chain not ready within {timeout}s: {self.log(node).read_text()[-2000:]}")

    def _sealer_listens(self) -> bool:
        if "sealer" not in self.processes:
            return True  # the sealer runs elsewhere (or not yet): nothing to wait for here
        try:
            with socket.create_connection(("127.0.0.1", self.p2p_port), timeout=1):
                return True
        except OSError:
            return False

    def block_number(self) -> int:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}).encode()
        request = urllib.request.Request(self.rpc_url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return int(json.load(response)["result"], 16)
        except OSError:
            return -1

    def _stop(self, node: str) -> None:
        process = self.processes.pop(node, None)
        if process:
            processes.stop(process, grace=30)

    def stop_rpc(self) -> None:
        self._stop("rpc")

    def stop(self) -> None:
        self._stop("rpc")
        self._stop("sealer")

    def __enter__(self) -> DevChain:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class SealerWithIPC(DevChain):
    """The dev chain with its sealer's IPC socket open, as a lab sealer's is (clique_vote's, upgrade.yml's way in)."""

    @property
    def ipc(self) -> Path:
        return self.workdir / "sealer" / "geth.ipc"

    def _common(self, node: str) -> list[str]:
        args = super()._common(node)
        if node == "sealer":
            args.remove("--ipcdisable")
        return args
