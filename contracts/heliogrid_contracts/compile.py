"""Compile contracts/src through solc's standard JSON and record the artifacts in contracts/build.

    python -m heliogrid_contracts.compile            # (re)write contracts/build/<Name>.json
    python -m heliogrid_contracts.compile --check    # recompile, exit 1 if build/ differs

The standard-JSON input is self-contained (every source, OpenZeppelin's included, is passed by
content under a stable name), so the bytecode does not depend on where the clone or the cache lives.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import posixpath
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heliogrid_contracts.toolchain import CONTRACTS_DIR, Toolchain, ensure_toolchain

SOURCE_PREFIX = "src/"
LIBRARY_PREFIX = "@openzeppelin/contracts/"
_IMPORT_RE = re.compile(r"""^\s*import\s+(?:[^"';]*?\s+from\s+)?["']([^"']+)["']""", re.MULTILINE)


@dataclass(frozen=True)
class CompilerSettings:
    """Pinned compiler settings. evmVersion paris: a Clique chain never reaches Shanghai (no PUSH0)."""

    evm_version: str = "paris"
    optimizer_runs: int = 200
    outputs: tuple[str, ...] = field(
        default=(
            "abi",
            "evm.bytecode.object",
            "evm.deployedBytecode.object",
            "evm.deployedBytecode.immutableReferences",
        )
    )

    def as_solc(self) -> dict[str, Any]:
        return {
            "evmVersion": self.evm_version,
            "optimizer": {"enabled": True, "runs": self.optimizer_runs},
            "metadata": {"bytecodeHash": "ipfs"},
            "outputSelection": {"*": {"*": list(self.outputs)}},
        }


class CompileError(RuntimeError):
    """The sources did not compile or an import could not be resolved."""


def _source_path(name: str, contracts_dir: Path, node_modules: Path) -> Path:
    if name.startswith(SOURCE_PREFIX):
        return contracts_dir / name
    if name.startswith(LIBRARY_PREFIX):
        return node_modules / name
    raise CompileError(f"import {name!r} is neither under {SOURCE_PREFIX} nor {LIBRARY_PREFIX}")


def collect_sources(contracts_dir: Path, node_modules: Path) -> dict[str, str]:
    """Every source the contracts in src/ need, keyed by the name solc sees, imports followed."""
    pending = sorted(f"{SOURCE_PREFIX}{p.name}" for p in (contracts_dir / SOURCE_PREFIX).glob("*.sol"))
    if not pending:
        raise CompileError(f"no .sol files in {contracts_dir / SOURCE_PREFIX}")
    sources: dict[str, str] = {}
    while pending:
        name = pending.pop()
        if name in sources:
            continue
        path = _source_path(name, contracts_dir, node_modules)
        if not path.is_file():
            raise CompileError(f"source {name!r} not found at {path}")
        text = path.read_text()
        sources[name] = text
        for imported in _IMPORT_RE.findall(text):
            if imported.startswith("."):
                imported = posixpath.normpath(posixpath.join(posixpath.dirname(name), imported))
            pending.append(imported)
    return dict(sorted(sources.items()))


def standard_input(sources: dict[str, str], settings: CompilerSettings) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": settings.as_solc(),
    }


def input_digest(std_input: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(std_input, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def compile_contracts(
    toolchain: Toolchain, contracts_dir: Path = CONTRACTS_DIR, settings: CompilerSettings | None = None
) -> dict[str, dict[str, Any]]:
    """Compile src/ and return one artifact per deployable contract defined there, keyed by name."""
    import solcx  # imported here so that reading artifacts does not need py-solc-x

    settings = settings or CompilerSettings()
    std_input = standard_input(collect_sources(contracts_dir, toolchain.node_modules), settings)
    try:
        output = solcx.compile_standard(std_input, solc_binary=toolchain.solc)
    except solcx.exceptions.SolcError as exc:
        raise CompileError(f"solc {toolchain.solc_version} failed:\n{exc}") from exc
    compiler = {
        "version": toolchain.solc_version,
        "evmVersion": settings.evm_version,
        "optimizer": {"enabled": True, "runs": settings.optimizer_runs},
        "openzeppelin": toolchain.openzeppelin_version,
        "inputSha256": input_digest(std_input),
    }
    artifacts: dict[str, dict[str, Any]] = {}
    for source_name, contracts in output["contracts"].items():
        if not source_name.startswith(SOURCE_PREFIX):
            continue
        for name, out in contracts.items():
            if not out["evm"]["bytecode"]["object"]:
                continue  # interfaces and abstract contracts
            artifacts[name] = {
                "contractName": name,
                "sourceName": source_name,
                "abi": out["abi"],
                "bytecode": "0x" + out["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + out["evm"]["deployedBytecode"]["object"],
                "immutableReferences": out["evm"]["deployedBytecode"].get("immutableReferences", {}),
                "compiler": compiler,
            }
    return dict(sorted(artifacts.items()))


def render(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def write_artifacts(artifacts: dict[str, dict[str, Any]], build_dir: Path) -> list[Path]:
    build_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in artifacts.items():
        path = build_dir / f"{name}.json"
        path.write_text(render(artifact))
        written.append(path)
    return written


def differences(artifacts: dict[str, dict[str, Any]], build_dir: Path) -> list[str]:
    """What differs between fresh artifacts and the recorded ones (empty: the build reproduces)."""
    problems = []
    recorded = {p.stem for p in build_dir.glob("*.json")}
    for name in sorted(recorded - artifacts.keys()):
        problems.append(f"{build_dir / name}.json is recorded but no longer compiled")
    for name, artifact in artifacts.items():
        path = build_dir / f"{name}.json"
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        old = json.loads(path.read_text())
        for key in ("bytecode", "deployedBytecode", "abi", "compiler"):
            if old.get(key) != artifact[key]:
                problems.append(f"{path}: {key} differs from a fresh compile")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with contracts/build instead of writing")
    parser.add_argument("--solc", choices=("auto", "native", "npm"), default="auto", help="compiler to use")
    parser.add_argument("--build-dir", type=Path, default=CONTRACTS_DIR / "build")
    args = parser.parse_args(argv)
    toolchain = ensure_toolchain(prefer=args.solc)
    artifacts = compile_contracts(toolchain)
    if args.check:
        problems = differences(artifacts, args.build_dir)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return 1
        print(f"build reproduces with solc {toolchain.solc_version}: {', '.join(artifacts)}")
        return 0
    for path in write_artifacts(artifacts, args.build_dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
