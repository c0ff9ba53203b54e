"""The pinned Solidity compiler and library sources: where they come from and where they are cached.

The compiler version and the OpenZeppelin version are pinned once, in contracts/package.json (and
its lock file). The compiler is either a native solc that py-solc-x already installed for exactly
that version, or, where binaries.soliditylang.org is unreachable, the npm `solc` package (soljson)
behind `solc-adapter.js`, an executable speaking solc's `--version` / `--standard-json` command
line. Both produce identical bytecode for the same standard-JSON input.

`npm ci` runs once per lock file: the result lives in
${XDG_CACHE_HOME:-~/.cache}/heliogrid/contracts-npm/<hash of lock file and adapter>/, outside the
clone, so fresh clones (CI) reuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CONTRACTS_DIR = Path(__file__).resolve().parent.parent
ADAPTER_SOURCE = Path(__file__).resolve().parent / "solc-adapter.js"
_VERSION_RE = re.compile(r"Version:\s*(\d+\.\d+\.\d+)(\+commit\.[0-9a-f]+)?")


class ToolchainError(RuntimeError):
    """The pinned compiler or library sources could not be provided."""


@dataclass(frozen=True)
class Toolchain:
    """A ready compiler: the executable py-solc-x calls and where library sources are read from."""

    solc: Path
    solc_version: str  # e.g. "0.8.28+commit.7893614a", the form solc writes into metadata
    node_modules: Path
    openzeppelin_version: str


@dataclass(frozen=True)
class Pins:
    """Versions pinned in package.json."""

    solc: str
    openzeppelin: str

    @classmethod
    def from_package_json(cls, path: Path) -> Pins:
        deps = json.loads(path.read_text())["dependencies"]
        pins = {}
        for name in ("solc", "@openzeppelin/contracts"):
            version = deps.get(name, "")
            if not re.fullmatch(r"\d+\.\d+\.\d+", version):
                raise ToolchainError(
                    f"{path}: dependency {name!r} must be pinned to an exact x.y.z version, got {version!r}"
                )
            pins[name] = version
        return cls(solc=pins["solc"], openzeppelin=pins["@openzeppelin/contracts"])


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "heliogrid" / "contracts-npm"


def solc_version_of(executable: Path) -> str:
    """The `x.y.z+commit.hash` version an executable reports through `--version`."""
    try:
        out = subprocess.run([str(executable), "--version"], capture_output=True, text=True, check=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(f"cannot run {executable} --version: {exc}") from exc
    match = _VERSION_RE.search(out.stdout)
    if not match:
        raise ToolchainError(f"{executable} --version printed no 'Version: x.y.z', got: {out.stdout.strip()!r}")
    return match.group(1) + (match.group(2) or "")


def _npm_key(contracts_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in (contracts_dir / "package-lock.json", ADAPTER_SOURCE):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_npm_toolchain(contracts_dir: Path = CONTRACTS_DIR) -> Path:
    """Install the locked npm packages and the adapter into the cache (once) and return the directory."""
    lock = contracts_dir / "package-lock.json"
    if not lock.is_file():
        raise ToolchainError(f"{lock} is missing: the npm dependencies must be locked (run `npm install` once)")
    target = cache_root() / _npm_key(contracts_dir)
    if (target / "solc").is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise ToolchainError("npm not found on PATH: it is needed once to install the pinned solc (npm ci)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        shutil.copy2(contracts_dir / "package.json", staging / "package.json")
        shutil.copy2(lock, staging / "package-lock.json")
        proc = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=staging,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if proc.returncode != 0:
            raise ToolchainError(f"npm ci failed in {staging} (exit {proc.returncode}):\n{proc.stderr.strip()}")
        adapter = staging / "solc-adapter.js"
        shutil.copy2(ADAPTER_SOURCE, adapter)
        # The executable py-solc-x and Slither call: named `solc`, beside node_modules so that
        # require('solc') resolves there.
        (staging / "solc").symlink_to("solc-adapter.js")
        adapter.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:
            if not (target / "solc").is_file():  # not a concurrent install that won the race
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _native_solc(version: str) -> Path | None:
    """A native solc that py-solc-x installed earlier for exactly `version`, if any."""
    try:
        import solcx  # imported here: only compiling needs py-solc-x

        return Path(solcx.get_executable(version))
    except Exception:  # any failure just means "no native binary for this version"
        return None


def ensure_toolchain(contracts_dir: Path = CONTRACTS_DIR, prefer: str = "auto") -> Toolchain:
    """Return the pinned compiler. `prefer`: "native" (py-solc-x binary), "npm" (soljson) or "auto"."""
    if prefer not in ("auto", "native", "npm"):
        raise ToolchainError(f"compiler choice must be one of auto, native, npm; got {prefer!r}")
    pins = Pins.from_package_json(contracts_dir / "package.json")
    npm_dir = ensure_npm_toolchain(contracts_dir)  # OpenZeppelin sources come from npm either way
    node_modules = npm_dir / "node_modules"
    installed_oz = json.loads((node_modules / "@openzeppelin/contracts/package.json").read_text())["version"]
    if installed_oz != pins.openzeppelin:
        raise ToolchainError(f"{node_modules}: OpenZeppelin {installed_oz} installed, {pins.openzeppelin} pinned")

    solc: Path | None = None
    if prefer in ("auto", "native"):
        solc = _native_solc(pins.solc)
        if solc is None and prefer == "native":
            raise ToolchainError(
                f"no native solc {pins.solc} installed by py-solc-x (python -m solcx.install v{pins.solc})"
            )
    if solc is None:
        solc = npm_dir / "solc"
    version = solc_version_of(solc)
    if not version.startswith(pins.solc + "+") and version != pins.solc:
        raise ToolchainError(f"{solc} is solc {version}, but package.json pins {pins.solc}")
    return Toolchain(solc=solc, solc_version=version, node_modules=node_modules, openzeppelin_version=pins.openzeppelin)
