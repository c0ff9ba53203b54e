"""Reading the recorded build artifacts (contracts/build/<Name>.json) and checking deployed code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heliogrid_contracts.toolchain import CONTRACTS_DIR

BUILD_DIR = CONTRACTS_DIR / "build"


@dataclass(frozen=True)
class Artifact:
    """One compiled contract as recorded by `heliogrid_contracts.compile`."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    immutable_ranges: tuple[tuple[int, int], ...]  # (start, length) in deployed code, filled at deploy time

    @classmethod
    def load(cls, name: str, build_dir: Path = BUILD_DIR) -> Artifact:
        path = build_dir / f"{name}.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"artifact {path} not found: run `python -m heliogrid_contracts.compile`") from exc
        ranges = sorted(
            (ref["start"], ref["length"]) for refs in data.get("immutableReferences", {}).values() for ref in refs
        )
        return cls(
            name=name,
            abi=data["abi"],
            bytecode=data["bytecode"],
            deployed_bytecode=data["deployedBytecode"],
            immutable_ranges=tuple(ranges),
        )

    def matches_code(self, code: bytes) -> bool:
        """True when `code` (from eth_getCode) is this contract's runtime code, immutables aside."""
        expected = bytearray(bytes.fromhex(self.deployed_bytecode.removeprefix("0x")))
        actual = bytearray(code)
        if len(actual) != len(expected):
            return False
        for start, length in self.immutable_ranges:
            actual[start : start + length] = bytes(length)
            expected[start : start + length] = bytes(length)
        return actual == expected
