"""Which secret each reporting node must present: one file per node in a directory that root writes.

The file is named after the node's ethstats name and holds `sha256:<64 lowercase hex digits>`, the sha256 of that
node's secret, so the stats host never stores a secret itself. Files are read at each login: a node added later
logs in without a restart of the app.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import stat
from pathlib import Path

log = logging.getLogger(__name__)

# The names geth may report under, and the only file names looked up: no '/', never '.' or '..'.
NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RECORD = re.compile(r"sha256:([0-9a-f]{64})")
_RECORD_BYTES = 128  # far more than a record; a bigger file is malformed


def secret_digest(secret: str) -> str:
    """What a node's credential file records for `secret` (Ansible's `hash('sha256')` of the same string)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class Credentials:
    """The node name -> secret digest files of one directory (None: no node may report)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def digest(self, name: str) -> str | None:
        """The recorded digest of `name`'s secret; None when there is no credential to trust (the reason is logged,
        except for a name without a file)."""
        if self.directory is None or not NODE_NAME.fullmatch(name):
            return None
        path = self.directory / name
        try:
            # O_NONBLOCK: a FIFO in the directory must not stall the event loop; fstat refuses it below.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("ethstats: credential %s ignored: cannot read it: %s", path, exc.strerror)
            return None
        with os.fdopen(fd, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if not stat.S_ISREG(mode) or mode & 0o022:
                log.warning(
                    "ethstats: credential %s ignored: mode %s, expected a regular file only its owner may write",
                    path,
                    stat.filemode(mode),
                )
                return None
            record = file.read(_RECORD_BYTES + 1)
        found = RECORD.fullmatch(record.decode("ascii", "replace").rstrip()) if len(record) <= _RECORD_BYTES else None
        if found is None:
            log.warning("ethstats: credential %s ignored: expected sha256:<64 lowercase hex digits>", path)
            return None
        return found.group(1)


def matches(secret: object, digest: str) -> bool:
    """Whether `secret` (as the hello carried it: any JSON value) is the one whose digest is recorded."""
    return isinstance(secret, str) and hmac.compare_digest(secret_digest(secret), digest)
