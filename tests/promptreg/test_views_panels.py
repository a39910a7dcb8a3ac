"""The version-panel hook other apps use to add to the version page without the registry importing them."""

from __future__ import annotations

import pytest
from django.template import engines
from django.urls import reverse

from promptreg import panels
from tests.promptreg.dashboard_helpers import publish_as

PANEL = "tests/score_panel.html"


@pytest.fixture
def score_panel():
    seen = []

    def context(version, request):
        seen.append((version.number, request.user.get_username()))
        return {"score": 0.87, "label": "<b>bold?</b>"}

    panels.register_version_panel(PANEL, context)
    yield seen
    panels.unregister_version_panel(PANEL)


def test_registered_panel_renders_with_its_context(client, author, score_panel, monkeypatch):
    from django.template import loader

    real = loader.render_to_string

    # The panel's template exists only in this test.
    def fake_render(name, context=None, request=None, using=None):
        if name == PANEL:
            return (
                engines["django"]
                .from_string(
                    '<section class="card" id="scores">score {{ score }} for v{{ version.number }} {{ label '
                    "}}</section>"
                )
                .render(context, request)
            )
        return real(name, context, request, using)

    monkeypatch.setattr("promptreg.templatetags.promptreg_panels.render_to_string", fake_render)
    publish_as(author)
    client.force_login(author)
    html = client.get(reverse("promptreg:version-detail", args=["support-system", 1])).content.decode()
    assert '<section class="card" id="scores">score 0.87 for v1 &lt;b&gt;bold?&lt;/b&gt;</section>' in html
    assert score_panel == [(1, "alice")]


def test_no_panels_by_default(client, author):
    publish_as(author)
    client.force_login(author)
    html = client.get(reverse("promptreg:version-detail", args=["support-system", 1])).content.decode()
    assert 'id="scores"' not in html
