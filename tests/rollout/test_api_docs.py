"""The API documentation page: local Swagger UI over /api/v1/openapi.json, linked from the nav."""

from __future__ import annotations

import json
import re

from django.contrib.staticfiles import finders

from tests.conftest import PASSWORD


def test_docs_page_uses_only_local_assets(client, db):
    response = client.get("/docs/api/")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/static/ninja/swagger-ui-bundle.js" in sources and "/static/ninja/swagger-ui.css" in sources
    assert not [s for s in sources if s.startswith(("http:", "https:", "//"))]
    assert all(finders.find(s.removeprefix("/static/")) for s in sources if s.startswith("/static/"))
    settings = json.loads(
        re.search(r'<script id="swagger-settings" type="application/json">(.*?)</script>', html, re.S)[1]
    )
    assert settings == {
        "url": "/api/v1/openapi.json",
        "layout": "BaseLayout",
        "deepLinking": True,
        "validatorUrl": None,
    }


def test_nav_links_to_the_docs(client, author):
    client.login(username=author.username, password=PASSWORD)
    assert 'href="/docs/api/"' in client.get("/docs/api/").content.decode()


def test_ninja_builtin_docs_are_local_too(client, db):
    html = client.get("/api/v1/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html and "cdn.jsdelivr" not in html
