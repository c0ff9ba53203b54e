"""Stopping the processes the tests start (geth, moto, relays): politely first, by force after a grace period."""

from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen, grace: float = 10, *, terminate: bool = True) -> None:
    """SIGTERM (unless ``terminate`` is false: the process is ending on its own), wait ``grace`` seconds, then
    SIGKILL; returns once the process is reaped."""
    if process.poll() is not None:
        return
    if terminate:
        process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
