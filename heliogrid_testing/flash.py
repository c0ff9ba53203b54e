"""What the SD-card flashing tests (tests/flash) run against: a small Raspberry Pi OS-like image, loop devices
standing in for SD cards, and a runner for playbooks/flash_pi.yml. The fixtures are in tests/flash/conftest.py."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


MiB = 1024 * 1024


SECTOR = 512


BOOT_START, BOOT_SECTORS = 8192, 81920  # 4 MiB in, 40 MiB FAT32 like a (small) Raspberry Pi OS boot partition


ROOT_START = BOOT_START + BOOT_SECTORS


IMAGE_BYTES = 64 * MiB


BOOT_OFFSET = BOOT_START * SECTOR


ROOT_OFFSET = ROOT_START * SECTOR


CARD_BYTES = 128 * MiB


SENTINEL = b"HELIOGRID-UNTOUCHED-CARD" * 4096  # what a card holds before a test, to prove nothing was written


ADMIN_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHeliogridTestKeyOnlyForFlashTests0000000000 ops@heliogrid-test"


TEST_HOST = "hgtest-pi"


TOOLS = ("losetup", "lsblk", "sfdisk", "mkfs.vfat", "mkfs.ext4", "mcopy", "mtype", "xz")


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or any(shutil.which(t) is None for t in TOOLS),
    reason=f"needs root (loop devices) and {', '.join(TOOLS)}",
)


def run(*argv: str | Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True, **kwargs)


@dataclass(frozen=True)
class TestImage:
    """A disk image shaped like Raspberry Pi OS: FAT32 boot partition and ext4 root partition."""

    raw: Path
    packed: Path  # what is served: .img.xz or .img

    @functools.cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.packed.read_bytes()).hexdigest()

    def url(self, base: str) -> str:
        return f"{base}/{self.packed.name}"


def build_image(directory: Path, name: str, *, cloud_init: bool, compress: bool) -> TestImage:
    directory.mkdir(parents=True, exist_ok=True)
    raw = directory / f"{name}.img"
    with raw.open("wb") as f:
        f.truncate(IMAGE_BYTES)
    layout = f"label: dos\nstart={BOOT_START}, size={BOOT_SECTORS}, type=c\nstart={ROOT_START}, type=83\n"
    run("sfdisk", "--quiet", raw, input=layout)
    run("mkfs.vfat", "-F", "32", "-n", "bootfs", "--offset", str(BOOT_START), raw, str(BOOT_SECTORS // 2))
    boot = directory / f"{name}-boot"
    boot.mkdir()
    (boot / "config.txt").write_text("# test config.txt\narm_64bit=1\n")
    (boot / "cmdline.txt").write_text("console=serial0,115200 root=PARTUUID=0-02 rootwait\n")
    if cloud_init:  # the stock seed files current Raspberry Pi OS ships on its boot partition
        (boot / "user-data").write_text("#cloud-config\nssh_pwauth: false\n")
        (boot / "network-config").write_text("network:\n  version: 2\n")
        (boot / "meta-data").write_text("dsmode: local\ninstance_id: rpios-image\n")
    for f in sorted(boot.iterdir()):
        run("mcopy", "-i", f"{raw}@@{BOOT_OFFSET}", f, f"::/{f.name}")
    root = directory / f"{name}-root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text(f'PRETTY_NAME="HelioGrid test image {name}"\n')
    (root / "random.bin").write_bytes(os.urandom(2 * MiB))  # makes the root partition's bytes worth comparing
    root_bytes = IMAGE_BYTES - ROOT_OFFSET
    run(
        "mkfs.ext4",
        "-q",
        "-F",
        "-L",
        "rootfs",
        "-E",
        f"offset={ROOT_OFFSET}",
        "-d",
        root,
        raw,
        f"{root_bytes // 1024}k",
    )
    assert raw.stat().st_size == IMAGE_BYTES
    if not compress:
        return TestImage(raw=raw, packed=raw)
    packed = directory / f"{name}.img.xz"
    packed.write_bytes(lzma.compress(raw.read_bytes(), preset=1))
    return TestImage(raw=raw, packed=packed)


@dataclass
class LoopCard:
    """A loop device standing in for an SD card; it starts filled with a sentinel pattern."""

    backing: Path
    device: str
    partitions: list[str] = field(default_factory=list)

    def read(self, length: int, offset: int = 0) -> bytes:
        with open(self.device, "rb") as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            f.seek(offset)
            return f.read(length)

    def untouched(self) -> bool:
        return self.read(len(SENTINEL)) == SENTINEL


@contextlib.contextmanager
def loop_cards(directory: Path) -> Iterator[Callable[..., LoopCard]]:
    """Create loop-device 'cards' backed by files in `directory`; every one is detached (and unmounted) on exit,
    even on failure."""
    cards: list[LoopCard] = []
    mounts: list[Path] = []

    def make(size: int = CARD_BYTES, *, content: Path | None = None, partscan: bool = False) -> LoopCard:
        backing = directory / f"card{len(cards)}.bin"
        if content is not None:
            shutil.copyfile(content, backing)
        with backing.open("r+b" if content else "wb") as f:
            f.truncate(size)
            if content is None:
                f.write(SENTINEL)
        argv = ["losetup", "--find", "--show"] + (["--partscan"] if partscan else []) + [str(backing)]
        device = run(*argv).stdout.strip()
        card = LoopCard(backing=backing, device=device)
        cards.append(card)
        if partscan:
            # The kernel's own scan is not reliable in every container; partx adds the partitions explicitly.
            subprocess.run(["partx", "--add", device], check=False, capture_output=True)
            card.partitions = sorted(str(p) for p in Path("/dev").glob(Path(device).name + "p*"))
        return card

    make.mounts = mounts  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        for mountpoint in reversed(mounts):
            subprocess.run(["umount", str(mountpoint)], check=False, capture_output=True)
        for card in cards:
            subprocess.run(["losetup", "--detach", card.device], check=False, capture_output=True)


@dataclass
class PlayResult:
    rc: int
    output: str

    @property
    def recap(self) -> dict[str, int]:
        m = re.search(rf"^{TEST_HOST}\s*:\s*(.*)$", self.output, re.MULTILINE)
        assert m, f"no play recap in output:\n{self.output}"
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


def ansible_playbook() -> str:
    beside_python = Path(sys.executable).parent / "ansible-playbook"
    found = os.environ.get("HELIOGRID_ANSIBLE_PLAYBOOK") or (
        str(beside_python) if beside_python.exists() else shutil.which("ansible-playbook")
    )
    if not found:
        pytest.skip("ansible-playbook not found")
    return found


def write_inventory(directory: Path) -> Path:
    """The test Pi's inventory, in `directory`."""
    path = directory / "inventory.json"
    host = {"ansible_user": "ops", "pi_firstboot_admin_ssh_public_keys": [ADMIN_KEY]}
    path.write_text(json.dumps({"all": {"children": {"pis": {"hosts": {TEST_HOST: host}}}}}))
    return path


def player(workdir: Path, inventory: Path) -> Callable[..., PlayResult]:
    """Runs playbooks/flash_pi.yml for the test Pi with the given extra variables (never with a terminal); its
    image cache is workdir/cache."""

    def play(extra: dict, *, check: bool = False) -> PlayResult:
        extra = {"pi_image_cache_dir": str(workdir / "cache"), **extra}
        vars_file = workdir / "extra-vars.json"
        vars_file.write_text(json.dumps(extra))
        argv = [
            ansible_playbook(),
            "-i",
            str(inventory),
            "-l",
            TEST_HOST,
            "-e",
            f"@{vars_file}",
            str(REPO / "playbooks" / "flash_pi.yml"),
        ] + (["--check"] if check else [])
        env = {
            **os.environ,
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        }
        proc = subprocess.run(
            argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600
        )
        return PlayResult(proc.returncode, proc.stdout + proc.stderr)

    return play
