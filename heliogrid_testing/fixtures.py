"""pytest fixtures over heliogrid_testing: import them in a conftest with `from heliogrid_testing.fixtures import *`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from heliogrid_testing.devchain import DevChain, GethNotBuilt

__all__ = ["devchain"]


@pytest.fixture(scope="module")
def devchain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevChain]:
    """A running single-sealer Clique chain on 127.0.0.1 (1 s blocks), shared by the tests of a module and removed
    after them: each test deploys its own contracts on it, so none sees another's (a chain boots in 1.5 to 4 s)."""
    try:
        chain = DevChain(tmp_path_factory.mktemp("devchain"))
    except GethNotBuilt as exc:
        pytest.fail(str(exc))
    with chain:
        yield chain
