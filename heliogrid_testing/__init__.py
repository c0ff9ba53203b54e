"""Helpers the tests and the benchmarks share: chains (in-process EVM, a geth dev chain), the lab's chain and
agents as the system tier reads them, fakes and clients for the agent and the stats app, results files.

The lab itself is driven by lab/lab.py (`from lab import lab`).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository
