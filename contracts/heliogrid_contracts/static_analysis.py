"""Slither over exactly the sources, compiler and settings of the build; fails on high/medium findings.

Runs in Slither's own venv (slither-analyzer pins web3 7, the project uses web3 8); only the standard
library parts of this package are imported there. Use contracts/run_slither.sh, which provides that
venv, rather than calling this module directly.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from heliogrid_contracts.compile import CompilerSettings, collect_sources, standard_input
from heliogrid_contracts.toolchain import CONTRACTS_DIR, ensure_npm_toolchain

FAILING_IMPACTS = ("High", "Medium")
IGNORED_PATHS = ["@openzeppelin"]  # audited upstream code; our use of it is analysed through our contracts


def analyse(contracts_dir: Path = CONTRACTS_DIR) -> list[dict[str, Any]]:
    """Run every Slither detector; return the findings in our sources."""
    from crytic_compile import CryticCompile
    from crytic_compile.platform.solc_standard_json import SolcStandardJson
    from slither import Slither
    from slither.detectors import all_detectors
    from slither.detectors.abstract_detector import AbstractDetector

    npm_dir = ensure_npm_toolchain(contracts_dir)
    std_input = standard_input(collect_sources(contracts_dir, npm_dir / "node_modules"), CompilerSettings())
    # Slither asks for its own outputs (AST, source maps); sources and settings stay the build's.
    del std_input["settings"]["outputSelection"]
    with tempfile.TemporaryDirectory(prefix="hg-slither-") as workdir:
        # crytic-compile wants every source name to exist as a file below the working directory.
        Path(workdir, "src").symlink_to(contracts_dir / "src")
        Path(workdir, "node_modules").symlink_to(npm_dir / "node_modules")
        cwd = Path.cwd()
        os.chdir(workdir)
        try:
            compilation = CryticCompile(
                SolcStandardJson(std_input), solc=str(npm_dir / "solc"), solc_working_dir=workdir
            )
            slither = Slither(compilation, filter_paths=IGNORED_PATHS)
            for _, detector in inspect.getmembers(all_detectors, inspect.isclass):
                if issubclass(detector, AbstractDetector):
                    slither.register_detector(detector)
            return [finding for findings in slither.run_detectors() for finding in findings]
        finally:
            os.chdir(cwd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="also write the findings to this file")
    args = parser.parse_args(argv)
    findings = analyse()
    for finding in sorted(findings, key=lambda f: (f["impact"], f["check"])):
        print(f"[{finding['impact']}/{finding['confidence']}] {finding['check']}: {finding['description'].strip()}")
    failing = [f for f in findings if f["impact"] in FAILING_IMPACTS]
    if args.json:
        args.json.write_text(json.dumps(findings, indent=2, default=str) + "\n")
    print(f"slither: {len(findings)} finding(s), {len(failing)} high/medium")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
