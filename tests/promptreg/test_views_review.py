"""Review workflow: submit, inbox, approve / request changes, and the author never approving their own version."""

from __future__ import annotations

import pytest
from django.urls import reverse

from promptreg.models import Review
from promptreg.services import review_submit, version_submit_for_review
from tests.promptreg.dashboard_helpers import activate, approved, as_user, publish_as


def url(action, number=1, name="support-system"):
    return reverse(f"promptreg:version-{action}", args=[name, number])


@pytest.fixture
def in_review(author):
    version = publish_as(author)
    version_submit_for_review(version=version, actor=as_user(author))
    return version


def test_author_submits_a_draft_for_review(client, author):
    version = publish_as(author)
    client.force_login(author)
    html = client.get(url("detail")).content.decode()
    assert "Submit for review" in html
    response = client.post(url("submit"), follow=True)
    assert "waiting for review" in response.content.decode()
    version.refresh_from_db()
    assert version.status == "in_review"
    again = client.post(url("submit"), follow=True).content.decode()
    assert "only drafts can be submitted" in again


@pytest.mark.parametrize("role", ["deployer", "outsider"])
def test_non_authors_cannot_submit(client, request, author, role):
    version = publish_as(author)
    client.force_login(request.getfixturevalue(role))
    assert "Submit for review" not in client.get(url("detail")).content.decode()
    assert client.post(url("submit")).status_code == 403
    version.refresh_from_db()
    assert version.status == "draft"


def test_inbox_lists_versions_waiting_for_review(client, in_review, reviewer, author):
    client.force_login(reviewer)
    html = client.get(reverse("promptreg:review-inbox")).content.decode()
    assert "support-system" in html and ">Review</a>" in html and "Compare" in html
    assert (
        client.get(reverse("promptreg:review-count")).content.decode().strip()
        == '<span class="count" title="waiting for your review">1<span class="visually-hidden"> waiting for your '
        "review</span></span>"
    )
    client.force_login(author)
    html = client.get(reverse("promptreg:review-inbox")).content.decode()
    assert "Your versions in review" in html and "Nothing is waiting" in html
    assert client.get(reverse("promptreg:review-count")).content.strip() == b""


def test_reviewer_approves_over_htmx(client, in_review, reviewer):
    client.force_login(reviewer)
    html = client.get(url("detail")).content.decode()
    assert "Approve" in html and "Request changes" in html
    response = client.post(
        url("review"), {"decision": "approve", "comment": "clear and safe"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<aside id="review-panel"')
    assert "versionReviewed" in response["HX-Trigger"]
    assert "clear and safe" in body and "Approved" in body and "Review recorded: approve on v1." in body
    in_review.refresh_from_db()
    assert in_review.status == "approved"
    assert Review.objects.get().reviewer == reviewer


def test_request_changes_needs_a_comment(client, in_review, reviewer):
    client.force_login(reviewer)
    response = client.post(
        url("review"), {"decision": "request_changes", "comment": ""}, headers={"HX-Request": "true"}
    )
    assert "Say what should change" in response.content.decode()
    assert not Review.objects.exists()
    client.post(url("review"), {"decision": "request_changes", "comment": "too long"})
    in_review.refresh_from_db()
    assert in_review.status == "changes_requested"


def test_author_cannot_approve_their_own_version(client, reviewer):
    version = publish_as(reviewer)  # rita is both Author and Reviewer
    version_submit_for_review(version=version, actor=as_user(reviewer))
    client.force_login(reviewer)
    html = client.get(url("detail")).content.decode()
    assert "Approve" not in html and "someone else has to approve it" in html
    assert client.post(url("review"), {"decision": "approve"}).status_code == 403
    version.refresh_from_db()
    assert version.status == "in_review" and not Review.objects.exists()


@pytest.mark.parametrize("role", ["author", "deployer", "outsider"])
def test_non_reviewers_see_no_review_buttons_and_get_403(client, request, second_author, role):
    version = publish_as(second_author)
    version_submit_for_review(version=version, actor=as_user(second_author))
    client.force_login(request.getfixturevalue(role))
    html = client.get(url("detail")).content.decode()
    assert "Approve" not in html and "Request changes" not in html
    assert client.post(url("review"), {"decision": "approve"}).status_code == 403
    version.refresh_from_db()
    assert version.status == "in_review"


def test_version_page_says_what_is_missing_before_production(client, in_review, reviewer):
    client.force_login(reviewer)
    html = client.get(url("detail")).content.decode()
    assert "Before it can go to production" in html and "peer review: needs 1 approval" in html


def test_requested_changes_wait_for_the_author_until_revised_and_the_reviewer_sees_both_diffs(
    client, author, reviewer, deployer
):
    activate(approved(author, reviewer, body="Hello {{ name }}."), deployer)  # v1 in production
    v2 = publish_as(author, body="Hello {{ name }}, how are you?")
    version_submit_for_review(version=v2, actor=as_user(author))
    review_submit(
        version=v2, actor=as_user(reviewer), decision="request_changes", comment="Too chatty: drop the question."
    )
    client.force_login(author)
    home = client.get(reverse("promptreg:prompt-list")).content.decode()
    assert (
        "Waiting for your changes" in home and "support-system v2" in home and "Too chatty: drop the question." in home
    )
    assert f"{reverse('promptreg:version-new', args=['support-system'])}?from=2" in home and ">rita <" in home
    assert "Waiting for your changes" in client.get(reverse("promptreg:review-inbox")).content.decode()
    assert 'title="waiting for your changes">1<' in client.get(reverse("promptreg:review-count")).content.decode()
    client.force_login(reviewer)
    assert "Waiting for your changes" not in client.get(reverse("promptreg:prompt-list")).content.decode()

    v3 = publish_as(author, body="Hello {{ name }}, thanks.", parent_number=2)
    version_submit_for_review(version=v3, actor=as_user(author))
    page = client.get(reverse("promptreg:version-detail", args=["support-system", 3])).content.decode()
    assert "Changes since the reviewed version, v2" in page and "Changes against production (v1)" in page
    client.force_login(author)
    assert "Waiting for your changes" not in client.get(reverse("promptreg:prompt-list")).content.decode()
    assert "waiting for your changes" not in client.get(reverse("promptreg:review-count")).content.decode()
