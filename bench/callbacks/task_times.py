"""Record every task's time on every host, for bench/site_profile.py.

Enabled only by the benchmark (ANSIBLE_CALLBACKS_ENABLED=task_times, ANSIBLE_CALLBACK_PLUGINS=bench/callbacks);
writes one JSON row per host and task to the file named by HELIOGRID_TASK_TIMES when the playbook ends.
A host's time for a task runs from its worker's start to its result, so it includes the connection's round trips.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: task_times
type: aggregate
short_description: every task's time on every host, as JSON (HelioGrid benchmarks)
description: Writes host, play, task, action, status, start and seconds for each task result to $HELIOGRID_TASK_TIMES.
requirements: [HELIOGRID_TASK_TIMES set to a writable path]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._play = ""
        self._started: dict[tuple[str, str], float] = {}
        self._rows: list[dict] = []
        self._t0 = time.monotonic()

    def v2_playbook_on_play_start(self, play) -> None:
        self._play = play.get_name()

    def v2_runner_on_start(self, host, task) -> None:
        self._started[(host.get_name(), task._uuid)] = time.monotonic()

    def _done(self, result, status: str) -> None:
        host, task = result._host.get_name(), result._task
        start = self._started.pop((host, task._uuid), None)
        if start is None:
            return
        self._rows.append(
            {
                "host": host,
                "play": self._play,
                "task": task.get_name(),
                "action": task.action,
                "status": status,
                "start": round(start - self._t0, 3),  # seconds since the playbook started: when the worker began
                "seconds": round(time.monotonic() - start, 3),
            }
        )

    def v2_runner_on_ok(self, result) -> None:
        self._done(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._done(result, "failed")

    def v2_runner_on_skipped(self, result) -> None:
        self._done(result, "skipped")

    def v2_runner_on_unreachable(self, result) -> None:
        self._done(result, "unreachable")

    def v2_playbook_on_stats(self, stats) -> None:
        path = os.environ.get("HELIOGRID_TASK_TIMES")
        if path:
            with open(path, "w") as out:
                json.dump(self._rows, out)
