"""Print the entries of a universal lock file that apply to one target Linux platform, without their markers.

`pip download --platform ... --python-version ...` fetches wheels for another machine but evaluates a requirement's
environment markers on the machine it runs on: on this amd64 host it would skip `lgpio ; platform_machine ==
'aarch64'` for the Pis. lab/build-wheelhouse.sh therefore gives pip the lock as the target sees it: the entries whose
markers hold there, markers removed, hashes kept as they are.

    python lab/lock_for_target.py LOCK --machine aarch64 --python 3.13 > target.txt
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from packaging.markers import Marker


def entries(text: str) -> list[str]:
    """The lock's requirement entries, each joined onto one line (pip's `\\` continuations), comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def for_target(text: str, machine: str, python: str) -> list[str]:
    environment = {
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": machine,
        "python_version": python,
        "python_full_version": f"{python}.0",
    }
    kept = []
    for entry in entries(text):
        requirement, _, hashes = entry.partition(" --hash=")
        name, _, marker = requirement.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(environment):
            continue
        kept.append(f"{name.strip()} --hash={hashes}" if hashes else name.strip())
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path)
    parser.add_argument("--machine", required=True, help="platform_machine of the target: x86_64, aarch64")
    parser.add_argument("--python", required=True, help="the target's Python, major.minor: 3.11, 3.13")
    args = parser.parse_args()
    sys.stdout.write("".join(line + "\n" for line in for_target(args.lock.read_text(), args.machine, args.python)))


if __name__ == "__main__":
    main()
