"""The docs page renders every API operation in a real browser, with no request leaving the server."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(90),
]


def test_swagger_ui_renders_the_openapi_document_locally(live_server, client):
    operations = sum(len(methods) for methods in client.get("/api/v1/openapi.json").json()["paths"].values())
    host = urlsplit(live_server.url).netloc
    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(f"{live_server.url}/docs/api/", timeout=30_000)
            page.wait_for_function(f"document.querySelectorAll('.opblock').length >= {operations}", timeout=30_000)
            rendered = page.locator(".opblock").count()
        finally:
            browser.close()
    assert rendered == operations
    assert [u for u in requested if urlsplit(u).netloc != host and not u.startswith("data:")] == []
