"""Compare page (side by side, inline, htmx fragment) and the audit trail (global, per prompt, filters, pages)."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from promptreg.services import rollback, version_submit_for_review
from tests.promptreg.dashboard_helpers import activate, approved, as_user, publish_as

COMPARE = reverse("promptreg:version-diff", args=["support-system"])
AUDIT = reverse("promptreg:audit")


def test_compare_defaults_to_production_against_latest(client, author, reviewer, deployer, outsider):
    activate(approved(author, reviewer, body="Hello {{ name }}"), deployer)
    publish_as(author, body="Hello there {{ name }} from {{ company }}", config={"temperature": 0.5})
    client.force_login(outsider)  # reading is open to every signed-in user
    html = client.get(COMPARE).content.decode()
    assert 'value="1" selected>v1 (production)' in html and 'value="2" selected>v2' in html
    assert "<ins>there </ins>" in html or "<ins> there</ins>" in html
    assert "Breaking change" in html and "<code>company</code>" in html
    assert "<code>temperature</code>" in html and "not set" in html
    assert 'class="split"' in html


def test_compare_inline_and_htmx_fragment(client, author):
    publish_as(author, body="one two")
    publish_as(author, body="one three")
    client.force_login(author)
    response = client.get(COMPARE, {"from": 1, "to": 2, "view": "inline"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="diff"') and "<html" not in html
    assert "<del>two</del><ins>three</ins>" in html and 'class="split"' not in html
    assert "HX-Request" in response["Vary"]


def test_compare_ignores_unknown_numbers_and_needs_versions(client, author):
    publish_as(author, body="a")
    client.force_login(author)
    assert client.get(COMPARE, {"from": "99", "to": "abc"}).status_code == 200
    assert client.get(reverse("promptreg:version-diff", args=["nope-system"])).status_code == 404


def story(author, reviewer, deployer):
    activate(approved(author, reviewer, commit_message="first"), deployer, reason="launch")
    v2 = approved(author, reviewer, body="Hey {{ name }}", commit_message="friendlier")
    activate(v2, deployer, reason="ship v2")
    rollback(name="support-system", actor=as_user(deployer), reason="complaints went up")


def test_audit_trail_shows_versions_reviews_moves_and_rollbacks(client, author, reviewer, deployer):
    story(author, reviewer, deployer)
    client.force_login(author)
    html = client.get(AUDIT).content.decode()
    for text in [
        "alice published v1",
        "alice published v2",
        "friendlier",
        "rita approved v2",
        "dave activated v1 in production (its first version there)",
        "launch",
        "dave rolled back production from v2 to v1",
        "complaints went up",
        "alice submitted v2 for review",
        "v2 is approved: it may be activated",
    ]:
        assert text in html, text
    assert "in_review" not in html and "<code>status</code>" not in html  # states in words, not raw values
    assert html.index("dave rolled back production") < html.index(
        "dave activated v2 in production (was v1)"
    )  # newest first
    per_prompt = client.get(reverse("promptreg:prompt-audit", args=["support-system"])).content.decode()
    assert "dave rolled back production from v2 to v1</a>:" in per_prompt and "(dashboard button)" in per_prompt


def test_audit_shows_prompt_field_changes_with_tag_names(client, author, reviewer):
    publish_as(author, tags=["support"])
    publish_as(reviewer, tags=["support", "vip"], prompt_type="agent-planning")  # a type change: Reviewers and Admins
    client.force_login(author)
    html = client.get(reverse("promptreg:prompt-audit", args=["support-system"]), {"kind": "prompt"}).content.decode()
    assert "<code>tags</code>: <del>support</del> → <ins>support, vip</ins>" in html
    assert "<code>prompt_type</code>: <del>system</del> → <ins>agent-planning</ins>" in html


def test_audit_filters_by_kind_user_prompt_and_date(client, author, reviewer, deployer):
    story(author, reviewer, deployer)
    publish_as(author, name="other-system", commit_message="unrelated")
    client.force_login(author)
    deploys = client.get(AUDIT, {"kind": "deploy"}).content.decode()
    assert "rolled back" in deploys and "published v1" not in deploys
    by_rita = client.get(AUDIT, {"user": "rita"}).content.decode()
    assert "rita approved v1" in by_rita and "published v1" not in by_rita and "dave activated" not in by_rita
    per_prompt = client.get(reverse("promptreg:prompt-audit", args=["support-system"])).content.decode()
    assert "unrelated" not in per_prompt
    assert "No entries match" in client.get(AUDIT, {"until": "2000-01-01"}).content.decode()


def test_audit_pages_and_query_count_do_not_grow(client, author):
    client.force_login(author)
    for _ in range(3):
        version_submit_for_review(version=publish_as(author), actor=as_user(author))

    def count(params):
        with CaptureQueriesContext(connection) as ctx:
            client.get(AUDIT, params)
        return len(ctx.captured_queries)

    few = count({})
    for _ in range(30):
        version_submit_for_review(version=publish_as(author), actor=as_user(author))
    assert count({}) == few
    page1 = client.get(AUDIT).content.decode()
    assert "Page 1 of 2" in page1 and "Older →" in page1
    page2 = client.get(AUDIT, {"page": 2}).content.decode()
    assert "Page 2 of 2" in page2 and "alice published v1<" in page2
    assert 'id="version-' in page2  # every entry has an anchor to link to
