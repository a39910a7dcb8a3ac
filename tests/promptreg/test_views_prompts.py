"""Prompt list and prompt page, per role: content, filters, fragments, query counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from promptreg.models import Prompt
from tests.promptreg.dashboard_helpers import activate, approved, publish_as

LIST = reverse("promptreg:prompt-list")


def detail(name="support-system"):
    return reverse("promptreg:prompt-detail", args=[name])


def test_anonymous_is_sent_to_sign_in(client, db):
    response = client.get(LIST)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_sign_in_page_signs_in(client, author):
    from tests.conftest import PASSWORD

    page = client.get(reverse("login"))
    assert page.status_code == 200 and b"Sign in" in page.content
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(LIST).status_code == 200
    bad = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert b"do not match" in bad.content


def test_list_shows_production_version_and_pending_reviews(client, author, reviewer, deployer):
    live = approved(author, reviewer)
    activate(live, deployer)
    draft = publish_as(author, commit_message="second")
    from promptreg.services import version_submit_for_review
    from tests.promptreg.dashboard_helpers import as_user

    version_submit_for_review(version=draft, actor=as_user(author))
    publish_as(author, name="billing-extraction", prompt_type="extraction")
    client.force_login(deployer)
    response = client.get(LIST)
    html = response.content.decode()
    assert response.status_code == 200
    assert "support-system" in html and "billing-extraction" in html
    assert '<span class="badge live">v1</span>' in html
    assert "1 waiting" in html
    assert "not live" in html  # billing-extraction has no production version


def test_new_prompt_button_only_for_authors(client, author, deployer):
    client.force_login(author)
    assert b"New prompt" in client.get(LIST).content
    client.force_login(deployer)
    assert b"New prompt" not in client.get(LIST).content


@pytest.mark.parametrize(
    "query, shown, hidden",
    [
        ({"q": "billing"}, ["billing-extraction"], ["support-system"]),
        ({"q": "refund policy"}, ["billing-extraction"], ["support-system"]),  # matches the prompt text
        ({"type": "system"}, ["support-system"], ["billing-extraction"]),
        ({"tag": "money"}, ["billing-extraction"], ["support-system"]),
        ({"owner": "amir"}, ["billing-extraction"], ["support-system"]),
        ({"status": "live"}, ["support-system"], ["billing-extraction"]),
        ({"status": "not-live"}, ["billing-extraction"], ["support-system"]),
    ],
)
def test_list_filters(client, author, second_author, reviewer, deployer, query, shown, hidden):
    activate(approved(author, reviewer), deployer)
    publish_as(
        second_author,
        name="billing-extraction",
        prompt_type="extraction",
        body="Apply the refund policy to {{ text }}",
        tags=["money"],
    )
    client.force_login(author)
    html = client.get(LIST, query).content.decode()
    for name in shown:
        assert f">{name}</a>" in html
    for name in hidden:
        assert f">{name}</a>" not in html


def test_retired_prompts_hidden_by_default_and_listed_under_retired(client, author, deployer):
    publish_as(author)
    publish_as(author, name="old-system")
    Prompt.objects.filter(name="old-system").update(retired_at="2026-01-01T00:00:00Z")
    client.force_login(author)
    assert b">old-system</a>" not in client.get(LIST).content
    assert b">old-system</a>" in client.get(LIST, {"status": "retired"}).content
    assert b">support-system</a>" not in client.get(LIST, {"status": "retired"}).content


def test_htmx_search_returns_only_the_table_fragment(client, author):
    publish_as(author)
    client.force_login(author)
    response = client.get(LIST, {"q": "support"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="prompt-table"')
    assert "<html" not in html and "support-system" in html
    assert "HX-Request" in response["Vary"]
    empty = client.get(LIST, {"q": "zzz"}, headers={"HX-Request": "true"}).content.decode()
    assert "No prompts match" in empty


def test_empty_state(client, author):
    client.force_login(author)
    assert b"No prompts yet" in client.get(LIST).content


def test_list_query_count_does_not_grow_with_prompts(client, author, deployer, reviewer):
    client.force_login(author)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(LIST).status_code == 200
        return len(ctx.captured_queries)

    for i in range(3):
        activate(approved(author, reviewer, name=f"feature{i}-system", tags=["a", "b"]), deployer)
    few = count()
    for i in range(3, 20):
        activate(approved(author, reviewer, name=f"feature{i}-system", tags=["a", "b"]), deployer)
    assert count() == few


def test_prompt_page_shows_production_preview_labels_and_timeline(client, author, reviewer, deployer):
    v1 = approved(
        author, reviewer, body="Hello {{ name }}, welcome!", sample_values={"name": "Ada"}, commit_message="greeting"
    )
    activate(v1, deployer)
    publish_as(author, body="Hi {{ name }}", commit_message="shorter greeting")
    client.force_login(reviewer)
    html = client.get(detail()).content.decode()
    assert "Hello Ada, welcome!" in html  # compiled with the sample values
    assert 'id="v1" class="is-live"' in html and 'id="v2"' in html
    assert "shorter greeting" in html and "greeting" in html
    assert "Approved" in html and "Draft" in html
    assert "production</a> → <a" in html
    assert "Recent deployments" in html and "ship it" in html  # the deployment log, with reasons


def test_prompt_page_buttons_follow_roles(client, author, reviewer, deployer, outsider):
    v1 = approved(author, reviewer)
    activate(v1, deployer)
    activate(approved(author, reviewer, body="Hey {{ name }}"), deployer)
    client.force_login(author)
    html = client.get(detail()).content.decode()
    assert "New version" in html and "Roll back" not in html and "Retire prompt" not in html
    client.force_login(deployer)
    html = client.get(detail()).content.decode()
    assert "Roll back" in html and "Retire prompt" in html and "New version" not in html
    client.force_login(outsider)
    response = client.get(detail())
    html = response.content.decode()
    assert response.status_code == 200
    assert "New version" not in html and "Roll back" not in html and "Retire prompt" not in html


def test_prompt_page_unknown_prompt_is_404(client, author):
    client.force_login(author)
    assert client.get(detail("no-such-prompt")).status_code == 404


def test_prompt_page_query_count_does_not_grow_with_versions(client, author, reviewer, deployer):
    client.force_login(author)
    activate(approved(author, reviewer), deployer)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(detail()).status_code == 200
        return len(ctx.captured_queries)

    for _ in range(2):
        publish_as(author)
    few = count()
    for _ in range(20):
        publish_as(author)
    assert count() == few


def test_folder_names_route_to_the_prompt(client, author):
    publish_as(author, name="billing/refund-extraction")
    client.force_login(author)
    response = client.get(detail("billing/refund-extraction"))
    assert response.status_code == 200 and b"billing/refund-extraction" in response.content
    assert client.get(reverse("promptreg:version-detail", args=["billing/refund-extraction", 1])).status_code == 200
