"""pytest fixtures over heliogrid_testing: import them in a conftest with `from heliogrid_testing.fixtures import *`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from heliogrid_testing.devchain import DevChain, GethNotBuilt

__all__ = ["devchain"]


@pytest.fixture
def devchain(tmp_path: Path) -> Iterator[DevChain]:
    """A running single-sealer Clique chain on 127.0.0.1 (1 s blocks), removed after the test."""
    try:
        chain = DevChain(tmp_path / "devchain")
    except GethNotBuilt as exc:
        pytest.fail(str(exc))
    with chain:
        yield chain
