"""Mitogen's linear strategy, found by name through ansible.cfg's strategy_plugins.

Mitogen for Ansible (PyPI `mitogen`, pinned in pyproject.toml) keeps one Python interpreter per target and
runs modules inside it: a task on the emulated arm64 Pi no longer starts Python under qemu-user, and podman
hosts are reached through Mitogen's own podman transport. `ANSIBLE_STRATEGY=linear` runs plain Ansible.
"""

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
