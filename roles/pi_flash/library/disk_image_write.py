#!/usr/bin/python
# Copyright: HelioGrid contributors
# Apache-2.0
"""Write a raw disk image to a block device, skip it when already there, verify by reading back."""

from __future__ import annotations

import hashlib
import os
import stat

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: disk_image_write
short_description: Write a raw disk image to a whole block device and verify it by reading it back
description:
  - Compares the device's first bytes with the image first and writes nothing when they are equal, so a
    second run changes nothing. Otherwise writes the image, flushes it to the device, drops the device's
    page cache and reads the written range back, failing when it differs from the image.
  - The device is opened exclusively (O_EXCL), which Linux refuses while any of its partitions is mounted.
  - Safety checks (removable, not the system disk...) belong to the caller; this module only insists on a
    block device.
options:
  image:
    description: Raw disk image file.
    type: path
    required: true
  device:
    description: Whole-disk block device to overwrite.
    type: path
    required: true
  compare:
    description: Compare before writing and skip an identical device; false always writes.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Write the card
  disk_image_write:
    image: /var/cache/pi1.img
    device: /dev/sdb
"""

RETURN = r"""
bytes:
  description: Size of the image (bytes compared, or written and read back).
  type: int
  returned: always
sha256:
  description: SHA-256 of the image, equal to that of the device's first C(bytes) bytes after success.
  type: str
  returned: when written or already equal
"""


CHUNK = 4 * 1024 * 1024


def drop_cache(fd: int) -> None:
    """Forget cached pages so the next read comes from the device, not from memory."""
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def first_difference(image_fd: int, device_fd: int, size: int) -> int | None:
    """Offset of the first differing chunk, or None when the device starts with the whole image."""
    os.lseek(image_fd, 0, os.SEEK_SET)
    os.lseek(device_fd, 0, os.SEEK_SET)
    done = 0
    while done < size:
        want = min(CHUNK, size - done)
        a = os.read(image_fd, want)
        b = os.read(device_fd, want)
        if a != b:
            return done
        if not a:
            break
        done += len(a)
    return None


def sha256_of(fd: int, size: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    digest = hashlib.sha256()
    done = 0
    while done < size:
        block = os.read(fd, min(CHUNK, size - done))
        if not block:
            break
        digest.update(block)
        done += len(block)
    return digest.hexdigest()


def write_all(image_fd: int, device_fd: int, size: int) -> None:
    os.lseek(image_fd, 0, os.SEEK_SET)
    os.lseek(device_fd, 0, os.SEEK_SET)
    done = 0
    while done < size:
        block = os.read(image_fd, min(CHUNK, size - done))
        if not block:
            raise OSError(f"image ended after {done} of {size} bytes")
        view = memoryview(block)
        while view:
            written = os.write(device_fd, view)
            view = view[written:]
        done += len(block)
    os.fsync(device_fd)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "image": {"type": "path", "required": True},
            "device": {"type": "path", "required": True},
            "compare": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    image, device = module.params["image"], module.params["device"]
    try:
        if not stat.S_ISREG(os.stat(image).st_mode):
            module.fail_json(msg=f"image {image} is not a regular file")
        if not stat.S_ISBLK(os.stat(device).st_mode):
            module.fail_json(msg=f"device {device} is not a block device")
    except FileNotFoundError as e:
        module.fail_json(msg=f"{e.filename} does not exist")
    size = os.path.getsize(image)

    image_fd = os.open(image, os.O_RDONLY)
    mode = os.O_RDONLY if module.check_mode else os.O_RDWR | os.O_EXCL
    try:
        device_fd = os.open(device, mode)
    except OSError as e:
        module.fail_json(msg=f"cannot open {device} exclusively ({e.strerror}): is one of its partitions mounted?")
    try:
        device_size = os.lseek(device_fd, 0, os.SEEK_END)
        if device_size < size:
            module.fail_json(msg=f"{device} has {device_size} bytes, fewer than the {size}-byte image {image}")
        if module.params["compare"]:
            drop_cache(device_fd)
            if first_difference(image_fd, device_fd, size) is None:
                module.exit_json(changed=False, bytes=size, sha256=sha256_of(image_fd, size))
        if module.check_mode:
            module.exit_json(changed=True, bytes=size)

        write_all(image_fd, device_fd, size)
        drop_cache(device_fd)
        image_sum, device_sum = sha256_of(image_fd, size), sha256_of(device_fd, size)
        if image_sum != device_sum:
            module.fail_json(
                msg=f"read-back verification failed: the first {size} bytes of {device} have sha256 "
                f"{device_sum}, the image {image} has {image_sum}; the card may be faulty or was "
                "removed",
                bytes=size,
            )
        module.exit_json(changed=True, bytes=size, sha256=image_sum)
    finally:
        os.close(device_fd)
        os.close(image_fd)


if __name__ == "__main__":
    main()
