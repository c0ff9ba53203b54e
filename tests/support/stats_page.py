"""The public stats page as Debian's headless Chromium renders it, parsed like the stats app's own browser test.

The parser is the `Page` class of files/stats_app/tests/test_page_browser.py, taken from its source (with the
`VOID` set it uses) rather than by importing that module: the module also imports uvicorn and its folder's
`conftest`, which the system tier neither needs nor can import under that name. One parser, so the page's
element ids and data attributes are read the same way by both tiers.
"""

from __future__ import annotations
import __future__

import ast
import shutil
import subprocess
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

from tests.support import lab

BROWSER_TEST = lab.ROOT / "files" / "stats_app" / "tests" / "test_page_browser.py"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@cache
def page_parser() -> type[HTMLParser]:
    """The `Page` HTMLParser of the stats app's browser test: by_id (text by element id), meter_wh, body."""
    tree = ast.parse(BROWSER_TEST.read_text(), str(BROWSER_TEST))
    wanted = [
        node
        for node in tree.body
        if (isinstance(node, ast.ClassDef) and node.name == "Page")
        or (isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "VOID" for t in node.targets))
    ]
    if len(wanted) != 2:
        raise RuntimeError(f"{BROWSER_TEST} no longer defines VOID and class Page at module level")
    namespace: dict[str, object] = {"HTMLParser": HTMLParser, "__name__": "stats_page_parser"}
    code = compile(
        ast.Module(body=wanted, type_ignores=[]), str(BROWSER_TEST), "exec", flags=__future__.annotations.compiler_flag
    )
    exec(code, namespace)  # the repository's own test source
    return namespace["Page"]  # type: ignore[return-value]


def chromium(profile: Path, *args: str) -> str:
    """Run headless Chromium with the stats app test's flags; every host name except 127.0.0.1 fails to resolve."""
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=4000",
        # Keep the browser on loopback: it may reach only the forwarded port, nothing it could resolve elsewhere.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True).stdout


def render(url: str, profile: Path) -> HTMLParser:
    """The page at `url` after its script ran, parsed."""
    page = page_parser()()
    page.feed(chromium(profile, "--dump-dom", url))
    page.close()
    return page


def screenshot(url: str, profile: Path, target: Path, size: str = "1280,2000") -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    chromium(profile, f"--window-size={size}", f"--screenshot={target}", url)
    return target
