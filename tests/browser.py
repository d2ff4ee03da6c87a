"""Reports in a real browser: Debian's headless Chromium opens a report from disk, and the checks
every report must pass there (no console error, nothing fetched, no script), plus a full-page
screenshot kept under the test's temporary directory and copied to ``reports/screenshots/`` in
the repository when ``MLSHIP_KEEP_SCREENSHOTS=1``.

A missing browser fails the test: ``scripts/services.sh`` installs it (``make test`` runs that).
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPOSITORY = Path(__file__).resolve().parents[1]
KEPT = REPOSITORY / "reports" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium for a module's tests (fails the test when it is not installed)."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}; install it with `bash scripts/services.sh` "
            "(as root) or `apt-get install chromium`",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def open_report(browser: Browser, html_path: Path) -> Page:
    """The report loaded in a new page, having logged no error, fetched nothing else and run no
    script."""
    page = browser.new_page(viewport=VIEWPORT)
    problems: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(html_path.as_uri(), wait_until="load")
    assert problems == []
    assert requests == [html_path.as_uri()]  # the page fetches nothing else
    assert page.evaluate("document.scripts.length") == 0
    return page


def charts_have_size(page: Page) -> list[str]:
    """Every chart is drawn at a real size; their labels."""
    drawn = page.locator("svg.chart")
    labels = []
    for index in range(drawn.count()):
        chart = drawn.nth(index)
        box = chart.bounding_box()
        label = chart.get_attribute("aria-label") or ""
        labels.append(label)
        assert box is not None and box["width"] > 0 and box["height"] > 0, label
    return labels


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)


def screenshot(page: Page, path: Path) -> None:
    """A full-page screenshot taller than the window, kept on request (see the module)."""
    page.screenshot(path=str(path), full_page=True)
    width, height = png_size(path)
    assert width == VIEWPORT["width"] and height > VIEWPORT["height"]
    if os.environ.get("MLSHIP_KEEP_SCREENSHOTS") == "1":
        KEPT.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, KEPT / path.name)
