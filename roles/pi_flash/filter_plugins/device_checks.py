"""Decide whether a block device may be erased to make a Pi's SD card.

The rules read lsblk's JSON for the device (with its partitions and holders) and the mount table; each
broken rule becomes one sentence naming the device and what to do. An empty list means it is safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

WHOLE_DISK_TYPES = ("disk", "loop")


@dataclass(frozen=True)
class DevicePolicy:
    """What the operator allows beyond the safe defaults."""

    max_bytes: int
    allow_non_removable: bool = False
    allow_oversize: bool = False


@dataclass(frozen=True)
class Mount:
    source: str
    target: str


def _unescape(field: str) -> str:
    """Undo the octal escapes (\\040 for a space) of /proc/mounts."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            mounts.append(Mount(_unescape(fields[0]), _unescape(fields[1])))
    return mounts


def _flag(value: Any) -> bool:
    return value in (True, 1, "1", "true")


def _tree(node: dict) -> list[dict]:
    """The device and everything below it (partitions, device-mapper holders...)."""
    nodes = [node]
    for child in node.get("children") or []:
        nodes.extend(_tree(child))
    return nodes


def _human(size: int) -> str:
    return f"{size / 1e9:.1f} GB"


def device_problems(lsblk: dict, mounts_text: str, policy: DevicePolicy) -> list[str]:
    """Return why the device described by `lsblk` must not be erased (empty when it may)."""
    devices = lsblk.get("blockdevices") or []
    if len(devices) != 1:
        return [f"lsblk described {len(devices)} devices; expected exactly the one to be erased"]
    device = devices[0]
    path = device.get("path") or f"/dev/{device.get('name')}"
    nodes = _tree(device)
    paths = {n.get("path") for n in nodes if n.get("path")}
    partition_of_device = re.compile(re.escape(path) + r"p?[0-9]+$")

    def on_device(source: str) -> bool:
        return source in paths or bool(partition_of_device.match(source))

    problems: list[str] = []
    dtype = device.get("type")
    if dtype not in WHOLE_DISK_TYPES:
        parent = f" (its disk is /dev/{device['pkname']})" if device.get("pkname") else ""
        problems.append(
            f"{path} is a {dtype}, not a whole disk{parent}: give the card itself, e.g. /dev/sdX, "
            "not one of its partitions"
        )

    mounted = {(n.get("path"), mp) for n in nodes for mp in (n.get("mountpoints") or []) if mp}
    mounts = parse_mounts(mounts_text)
    mounted |= {(m.source, m.target) for m in mounts if on_device(m.source)}
    root_sources = sorted({src for src, mp in mounted if mp == "/"})
    if root_sources:
        problems.append(
            f"{path} holds the root file system (/ is mounted from {', '.join(root_sources)}): "
            "this is the computer's own disk, never an SD card to erase"
        )
    others = sorted(f"{src} on {mp}" for src, mp in mounted if mp != "/")
    if others:
        problems.append(
            f"{path} is mounted ({'; '.join(others)}): unmount it first "
            "(umount, or 'udisksctl unmount -b <partition>'), then run again"
        )

    removable = _flag(device.get("rm")) or _flag(device.get("hotplug"))
    if not removable and not policy.allow_non_removable:
        problems.append(
            f"{path} is not a removable device (lsblk RM=0, HOTPLUG=0); SD cards in USB readers are. "
            "If it really is the card (some built-in readers report RM=0), set "
            "pi_flash_allow_non_removable=true"
        )

    size = int(device.get("size") or 0)
    if size == 0:
        problems.append(f"{path} has size 0: is there a card in the reader?")
    elif size > policy.max_bytes and not policy.allow_oversize:
        problems.append(
            f"{path} is {size} bytes ({_human(size)}), larger than pi_flash_max_device_size "
            f"({policy.max_bytes} bytes): SD cards are smaller than that. If it really is the card, "
            "set pi_flash_allow_oversize=true"
        )
    return problems


def pi_flash_device_problems(
    lsblk: dict, mounts_text: str, max_bytes: int, allow_non_removable: bool = False, allow_oversize: bool = False
) -> list[str]:
    policy = DevicePolicy(int(max_bytes), bool(allow_non_removable), bool(allow_oversize))
    return device_problems(lsblk, mounts_text, policy)


class FilterModule:
    def filters(self) -> dict:
        return {"pi_flash_device_problems": pi_flash_device_problems}
