#!/usr/bin/python
# Copyright: HelioGrid contributors
# Apache-2.0
"""Write one file into the top folder of a FAT partition inside a disk image or device, with mtools."""

from __future__ import annotations

import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: fat_file
short_description: Put a file with given content on a FAT partition inside a disk image, without mounting
description:
  - Reads the current file with C(mtype) and rewrites it with C(mcopy -o -m) only when the content differs,
    so a second run changes nothing. The file's time stamp is fixed, so the same content always gives the
    same bytes on disk.
options:
  disk:
    description: Disk image file or whole-disk block device.
    type: path
    required: true
  offset:
    description: Byte offset of the FAT partition (see fat_partition_info).
    type: int
    required: true
  name:
    description: File name in the partition's top folder.
    type: str
    required: true
  content:
    description: Content of the file (may be secret; it is never returned).
    type: str
    required: true
  mtime:
    description: Modification time written into the FAT entry (seconds since the epoch).
    type: int
    default: 946684800
requirements: [mtools]
"""

EXAMPLES = r"""
- name: Write user-data
  fat_file:
    disk: /var/cache/pi.img
    offset: 4194304
    name: user-data
    content: "#cloud-config\n"
"""

RETURN = r"""
name:
  description: File name written or checked.
  type: str
  returned: always
"""


NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "disk": {"type": "path", "required": True},
            "offset": {"type": "int", "required": True},
            "name": {"type": "str", "required": True},
            "content": {"type": "str", "required": True, "no_log": True},
            "mtime": {"type": "int", "default": 946684800},
        },
        supports_check_mode=True,
    )
    p = module.params
    if not NAME_RE.match(p["name"]):
        module.fail_json(msg=f"name '{p['name']}' is not a plain file name (letters, digits, '.', '_', '-')")
    image = f"{p['disk']}@@{p['offset']}"
    target = f"::/{p['name']}"
    env = {"MTOOLS_SKIP_CHECK": "1"}
    wanted = p["content"].encode()

    rc, current, _err = module.run_command(
        ["mtype", "-i", image, target], environ_update=env, binary_data=True, encoding=None
    )
    if rc == 0 and current == wanted:
        module.exit_json(changed=False, name=p["name"])
    if module.check_mode:
        module.exit_json(changed=True, name=p["name"])

    with tempfile.TemporaryDirectory(prefix="fat_file.") as tmp:
        source = os.path.join(tmp, "content")
        fd = os.open(source, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(wanted)
        os.utime(source, (p["mtime"], p["mtime"]))
        rc, _out, err = module.run_command(["mcopy", "-o", "-m", "-i", image, source, target], environ_update=env)
        if rc != 0:
            module.fail_json(msg=f"mcopy could not write {target} into {image}: {err.strip()}")
    module.exit_json(changed=True, name=p["name"])


if __name__ == "__main__":
    main()
