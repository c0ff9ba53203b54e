"""Mitogen's linear strategy, found by name through ansible.cfg's strategy_plugins, with a warm start for workers.

Mitogen for Ansible (PyPI `mitogen`, pinned in pyproject.toml) keeps one Python interpreter per target and
runs modules inside it: a task on the emulated arm64 Pi no longer starts Python under qemu-user, and podman
hosts are reached through Mitogen's own podman transport. `ANSIBLE_STRATEGY=linear` runs plain Ansible.

Ansible forks a worker process per task and host, and each worker starts from the controller's memory as it was.
ansible-core loads the Jinja filter and test plugins on a template's first use, so every worker loaded all of them
again (a quarter of a worker's CPU in a no-op site.yml, profiled with py-spy: README, Timings). Loading them once
in the controller before its workers fork, as Mitogen already does for the action and connection plugins, gives every
worker a warm cache; ansible-core clears it whenever a play adds a plugin directory, so nothing stale is kept.
"""

import contextlib
import importlib

from ansible.plugins.loader import filter_loader, test_loader
from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule as _MitogenLinear

__all__ = ["StrategyModule"]

# The result (de)serializers a worker imports for each module call; private to ansible-core, hence optional.
_SERIALIZERS = tuple(
    f"ansible.module_utils._internal._json._profiles._module_{kind}"
    for kind in ("legacy_c2m", "legacy_m2c", "modern_c2m", "modern_m2c")
)


def warm_plugins() -> None:
    """Load every Jinja filter and test plugin, and the result serializers, into this process."""
    for loader in (filter_loader, test_loader):
        for _ in loader.all():
            pass
    for name in _SERIALIZERS:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


class StrategyModule(_MitogenLinear):
    def run(self, iterator, play_context, *args, **kwargs):
        warm_plugins()
        return super().run(iterator, play_context, *args, **kwargs)
