"""The web UI in a real browser: Debian's headless Chromium opens a page of a running
``mlship ui`` or ``mlship server``, and every page must load with no console error and no failed
request, and pass an axe-core scan with no serious or critical violation. A full-page screenshot
of each is kept under ``tests/ui/artifacts/`` (not committed); those of the README are copied to
``docs/screenshots/`` with ``MLSHIP_KEEP_SCREENSHOTS=1``.

axe-core comes from the npm registry, pinned in ``tools/axe`` (``make axe`` installs it, and
``make test`` runs that): a missing copy fails the test, never skips it.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, BrowserContext, Page

from mlship.config import Settings
from mlship.workspace import Workspace
from tests.browser import REPOSITORY, VIEWPORT
from tests.conftest import mlship_env
from tests.serving import Server, free_port, start_server

AXE = REPOSITORY / "tools" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SERIOUS = ("serious", "critical")
README_IMAGES = REPOSITORY / "docs" / "screenshots"
README_SHOTS = frozenset(
    {"runs", "run", "compare", "monitoring-model", "admin-users-revoked", "review-request"}
)
"""The screenshots the README shows, copied to :data:`README_IMAGES` when
``MLSHIP_KEEP_SCREENSHOTS=1`` (then committed)."""


def axe_script() -> Path:
    if not AXE.is_file():
        pytest.fail(
            f"axe-core is missing at {AXE}; install it with `make axe` (npm ci --prefix tools/axe)",
            pytrace=False,
        )
    return AXE


def new_context(browser: Browser, *, javascript: bool = True) -> BrowserContext:
    """A fresh browser context (its own cookies) with axe-core loaded into every page it opens:
    as an init script, which the pages' Content-Security-Policy does not apply to."""
    context = browser.new_context(viewport=VIEWPORT, java_script_enabled=javascript)
    if javascript:
        context.add_init_script(path=str(axe_script()))
    return context


@dataclass
class Visit:
    """What went wrong while a page loaded."""

    page: Page
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def watch(page: Page) -> Visit:
    visit = Visit(page)
    page.on("console", lambda m: visit.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: visit.errors.append(str(error)))
    page.on("requestfailed", lambda r: visit.failed.append(f"{r.url} {r.failure}"))
    page.on(
        "response",
        lambda r: visit.failed.append(f"{r.url} {r.status}") if r.status >= 400 else None,
    )
    return visit


def violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is now."""
    found: list[dict[str, Any]] = page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
            }));
        }"""
    )
    return [v for v in found if v["impact"] in SERIOUS]


def shot(page: Page, name: str) -> Path:
    """A full-page screenshot of ``page`` under the artifacts directory."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    if name in README_SHOTS and os.environ.get("MLSHIP_KEEP_SCREENSHOTS") == "1":
        README_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, README_IMAGES / f"ui-{name}.png")
    return path


def check_page(context: BrowserContext, url: str, name: str) -> Page:
    """Open ``url``; it must answer 200, log no error, fail no request and pass axe; keep its
    screenshot as ``name``."""
    page = context.new_page()
    visit = watch(page)
    answer = page.goto(url, wait_until="networkidle")
    assert answer is not None and answer.status == 200, (url, answer and answer.status)
    assert visit.errors == [], (url, visit.errors)
    assert visit.failed == [], (url, visit.failed)
    assert violations(page) == [], url
    shot(page, name)
    return page


# -- servers and signing in ------------------------------------------------------------------------


def add_team(home: Path, users: Mapping[str, str]) -> dict[str, str]:
    """Each user of ``users`` (name to role) added to the workspace at ``home``, with a token;
    the tokens' secrets by user."""
    workspace = Workspace.open(Settings(home=home, user="ops", n_jobs=1))
    try:
        tokens = {}
        for name, role in users.items():
            workspace.users.add(name, role)
            tokens[name] = workspace.users.create_token(name, "browser").secret
        return tokens
    finally:
        workspace.close()


@contextmanager
def mlship_ui(home: Path, ready: str = "/ui/runs") -> Iterator[Server]:
    """``mlship ui`` on the workspace at ``home``, on a free port of 127.0.0.1."""
    port = free_port()
    server = start_server(
        [sys.executable, "-m", "mlship", "ui", "--port", str(port)],
        mlship_env(home),
        f"http://127.0.0.1:{port}",
        ready=ready,
    )
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def team_server(home: Path, users: Mapping[str, str]) -> Iterator[tuple[Server, dict[str, str]]]:
    """``mlship server`` on the workspace at ``home`` once ``users`` (name to role) are added to
    it; the server and each user's token."""
    tokens = add_team(home, users)
    port = free_port()
    server = start_server(
        [sys.executable, "-m", "mlship", "server", "--port", str(port)],
        mlship_env(home),
        f"http://127.0.0.1:{port}",
        ready="/api/v1/health",
        ready_status=401,
    )
    try:
        yield server, tokens
    finally:
        server.stop()


def sign_in(page: Page, base: str, token: str, target: str) -> None:
    """Open ``target`` signed out, be sent to the sign-in form, sign in with ``token`` and land
    back on ``target``."""
    page.goto(f"{base}{target}")
    page.wait_for_url("**/ui/signin?next=*")
    page.fill("#token", token)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"**{target}")


def form_token(html: str) -> str:
    """The CSRF token of the first form of a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def client_sign_in(client: TestClient, token: str, landing: str = "/ui/runs") -> str:
    """Sign ``client`` in with ``token``, ending any earlier session; the CSRF token of the
    page at ``landing``."""
    client.cookies.clear()
    form = client.get("/ui/signin")
    assert form.status_code == 200
    answer = client.post("/ui/signin", data={"csrf": form_token(form.text), "token": token})
    assert answer.status_code == 303, answer.text
    page = client.get(landing)
    assert page.status_code == 200
    return form_token(page.text)
