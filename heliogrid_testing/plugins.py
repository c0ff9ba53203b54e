"""The project's Ansible plugins as Python modules for unit tests, loaded from their files as Ansible loads them.

Plugin folders are not Python packages (Ansible finds them through ansible.cfg and role folders), so they are
loaded by path, each under a name of its own.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from heliogrid_testing import ROOT


def plugin(path: str) -> ModuleType:
    """The plugin at `path` (relative to the repository, e.g. "plugins/filter/geth.py"), loaded once."""
    file = ROOT / path
    name = "heliogrid_plugin." + ".".join(file.relative_to(ROOT).with_suffix("").parts)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"no Ansible plugin at {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
