"""The public stats page as Debian's headless Chromium renders it, parsed: one parser for the stats app's browser
test (files/stats_app/tests/test_page_browser.py) and the system tier, so both read the page's element ids and
data attributes the same way.
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


VOID = {"meta", "link", "br", "img", "input", "hr", "source", "wbr", "col", "area", "base", "embed", "track"}


class Page(HTMLParser):
    """Text of elements with an id, the meter rows' data-value, the body rows of each table, and the bars of each
    chart."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.meter_wh: dict[str, int] = {}
        self.meter_cols: dict[str, dict[str, int]] = {}  # meter -> data-col -> data-value
        self.rows: dict[str, list[list[str]]] = {}  # table id -> text of each cell of each tbody row
        self.bars: dict[str, int] = {}
        self.body: dict[str, str | None] = {}
        self._open: list[str | None] = []  # id (or None) of every open element
        self._meter: str | None = None
        self._chart: str | None = None
        self._table: str | None = None
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag not in VOID:
            self._open.append(a.get("id"))
        if a.get("id"):
            self.by_id.setdefault(a["id"] or "", "")
            if "chart" in (a.get("class") or ""):
                self._chart = a["id"]
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.rows[self._table or ""] = []
        if tag == "tbody":
            self._in_body = True
        if tag == "tr" and self._table and self._in_body:
            self.rows[self._table].append([])
        if tag == "td" and self._table and self._in_body:
            self._cell = []
        if tag == "tr" and a.get("data-meter"):
            self._meter = a["data-meter"]
        if tag == "td" and a.get("data-col") and self._meter:
            self.meter_cols.setdefault(self._meter, {})[a["data-col"] or ""] = int(a["data-value"] or 0)
            if a["data-col"] == "total-wh":
                self.meter_wh[self._meter] = int(a["data-value"] or 0)
        if tag == "rect" and self._chart:
            self.bars[self._chart] = self.bars.get(self._chart, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table:
            self.rows[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "tbody":
            self._in_body = False
        if tag == "table":
            self._table = None
        if tag in VOID or not self._open:
            return
        closed = self._open.pop()
        if closed is not None and closed == self._chart:
            self._chart = None

    def handle_data(self, data: str) -> None:
        for element in self._open:  # text counts for every enclosing element that has an id
            if element is not None:
                self.by_id[element] += data
        if self._cell is not None:
            self._cell.append(data)

    def close(self) -> None:
        super().close()
        self.by_id = {k: v.strip() for k, v in self.by_id.items()}


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


def render(url: str, profile: Path) -> Page:
    """The page at `url` after its script ran, parsed."""
    page = Page()
    page.feed(chromium(profile, "--dump-dom", url))
    page.close()
    return page


def screenshot(url: str, profile: Path, target: Path, size: str = "1280,2000") -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    chromium(profile, f"--window-size={size}", f"--screenshot={target}", url)
    return target
