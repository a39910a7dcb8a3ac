"""Browser fixtures for the dashboard tests: Debian's Chromium through Playwright, a screenshot on failure."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
README_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def readme_screenshot(page, name: str) -> Path:
    """Take one of the README's screenshots: into docs/screenshots/ with `UPDATE_SCREENSHOTS=1`, else into
    test-artifacts/ (so an ordinary run leaves the tracked pictures alone)."""
    folder = README_SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else ARTIFACTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path))
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def browser_page(request, live_server, monkeypatch):
    """A fresh Chromium page on the live server; on failure its screenshot goes to test-artifacts/."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test still uses the ORM between steps.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            yield page
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is None or report.failed:
                ARTIFACTS.mkdir(exist_ok=True)
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            browser.close()
            # Without this, a PostgreSQL connection opened during a browser test outlives it (seen as
            # "database is being accessed by other users" when the test database is dropped at the end).
            connections.close_all()
