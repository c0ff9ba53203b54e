"""Fixtures of the flash tests: images and their server, loop-device cards, flash_pi.yml runs (heliogrid_testing)."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from heliogrid_testing.flash import LoopCard, PlayResult, TestImage, build_image, loop_cards, player, write_inventory


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TestImage]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    served = tmp_path_factory.mktemp("served")
    return {
        "xz": build_image(served, "raspios-test-lite", cloud_init=True, compress=True),
        "img": build_image(served, "raspios-test-plain", cloud_init=True, compress=False),
        "old": build_image(served, "raspios-bookworm-test", cloud_init=False, compress=True),
    }


@pytest.fixture(scope="session")
def image_server(images: dict[str, TestImage]) -> Iterator[str]:
    """Serve the test images on http://127.0.0.1:<free port>, so the role's download path is real."""
    directory = next(iter(images.values())).packed.parent

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, format: str, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def make_card(tmp_path: Path) -> Iterator[Callable[..., LoopCard]]:
    """Loop-device 'cards' for one test (see loop_cards)."""
    with loop_cards(tmp_path) as make:
        yield make


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    return write_inventory(tmp_path)


@pytest.fixture
def flash(tmp_path: Path, inventory: Path) -> Callable[..., PlayResult]:
    """Run playbooks/flash_pi.yml for the test Pi with the given extra variables (never with a terminal)."""
    return player(tmp_path, inventory)
