#!/usr/bin/python
# Copyright: HelioGrid contributors
# Apache-2.0
"""Find the FAT boot partition of a disk image or block device, without mounting it."""

from __future__ import annotations

import json
import os

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: fat_partition_info
short_description: Find the FAT boot partition of a disk image or device and list its top folder
description:
  - Reads the partition table with C(sfdisk --json) and returns the byte offset of the first FAT
    partition (MBR types 0x01, 0x04, 0x06, 0x0b, 0x0c, 0x0e; GPT basic data or EFI system), as mtools
    needs it (C(-i image@@offset)), and the names in that partition's top folder (C(mdir)).
  - Nothing is mounted and nothing is written.
options:
  disk:
    description: Disk image file or whole-disk block device.
    type: path
    required: true
requirements: [sfdisk (util-linux), mtools]
"""

EXAMPLES = r"""
- name: Find the boot partition
  fat_partition_info:
    disk: /var/cache/pi.img
  register: boot
"""

RETURN = r"""
offset:
  description: Byte offset of the FAT partition.
  type: int
  returned: success
number:
  description: Partition number (1-based).
  type: int
  returned: success
files:
  description: Names in the partition's top folder.
  type: list
  elements: str
  returned: success
"""


FAT_MBR_TYPES = {"1", "4", "6", "b", "c", "e"}
FAT_GPT_TYPES = {
    "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",  # Microsoft basic data
    "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",  # EFI system partition
}


def first_fat_partition(table: dict) -> tuple[int, int] | None:
    """Return (number, byte offset) of the first FAT partition in sfdisk's JSON, or None."""
    pt = table["partitiontable"]
    sector = int(pt.get("sectorsize", 512))
    for number, part in enumerate(pt.get("partitions", []), start=1):
        ptype = str(part.get("type", "")).lower().removeprefix("0x")
        if ptype in FAT_MBR_TYPES or ptype.upper() in FAT_GPT_TYPES:
            return number, int(part["start"]) * sector
    return None


def main() -> None:
    module = AnsibleModule(argument_spec={"disk": {"type": "path", "required": True}}, supports_check_mode=True)
    disk = module.params["disk"]
    if not os.path.exists(disk):
        module.fail_json(msg=f"{disk} does not exist: expected a disk image file or a block device")
    rc, out, err = module.run_command(["sfdisk", "--json", disk])
    if rc != 0:
        module.fail_json(msg=f"{disk} has no readable partition table (sfdisk: {err.strip()})")
    found = first_fat_partition(json.loads(out))
    if found is None:
        module.fail_json(msg=f"{disk} has no FAT partition: expected a Raspberry Pi OS image with a FAT boot partition")
    number, offset = found
    env = {"MTOOLS_SKIP_CHECK": "1"}
    rc, out, err = module.run_command(["mdir", "-b", "-i", f"{disk}@@{offset}", "::/"], environ_update=env)
    if rc != 0:
        module.fail_json(
            msg=f"partition {number} of {disk} at byte {offset} is not a readable FAT file system (mdir: {err.strip()})"
        )
    files = sorted(line.rsplit("/", 1)[-1] for line in out.splitlines() if line.startswith("::/"))
    module.exit_json(changed=False, offset=offset, number=number, files=files)


if __name__ == "__main__":
    main()
