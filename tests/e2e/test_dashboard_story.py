"""The whole story in a real browser: author → reviewer → deployer → app server → rollback → audit."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from promptreg.models import PRODUCTION, ApiKey, Label, PromptVersion, Review
from tests.conftest import PASSWORD, make_user

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(180),
]

NAME = "refund-reply-system"


def sign_in(page: Page, username: str) -> None:
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Prompts", exact=True)).to_be_visible()


def fill_samples(page: Page, samples: dict[str, str]) -> None:
    """One field per detected variable; it appears once the live panel has seen the template."""
    for name, value in samples.items():
        page.get_by_label(name, exact=True).fill(value)


def author_writes(page: Page, text: str, samples: dict[str, str], message: str, expected_preview: str) -> None:
    page.get_by_label("Prompt text").fill(text)
    fill_samples(page, samples)
    expect(page.locator("#live .prompt-text")).to_have_text(expected_preview)  # the live, compiled preview
    page.get_by_label("Reason for the change").fill(message)
    page.get_by_role("button", name="Save as draft").click()


def submit_for_review(page: Page) -> None:
    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_text("is waiting for review")).to_be_visible()


def review_from_inbox(page: Page, number: int) -> None:
    page.get_by_role("link", name="Reviews").click()
    row = page.get_by_role("row").filter(has_text=NAME).filter(has_text=f"v{number}")
    row.get_by_role("link", name="Compare").click()
    expect(page.get_by_role("heading", name="Compare versions")).to_be_visible()
    expect(page.locator("#diff")).to_be_visible()
    page.get_by_role("link", name=f"v{number}", exact=True).first.click()
    page.get_by_label("Comment").fill("Reads well.")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#review-panel .badge.status-approved")).to_be_visible()


def activate(page: Page, number: int, reason: str) -> None:
    page.goto(f"/prompts/{NAME}/-/v/{number}/")
    page.get_by_role("link", name="Activate").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text(f"to v{number}")).to_be_visible()
    dialog.get_by_label("Reason (required)").fill(reason)
    dialog.get_by_role("button", name="Activate").click()
    expect(page.get_by_text(f"v{number} of '{NAME}' is now live in production.")).to_be_visible()


def fetch(base_url: str, secret: str) -> dict:
    response = httpx.get(f"{base_url}/api/v1/prompts/{NAME}", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_author_reviewer_deployer_app_server_rollback_audit(browser_page: Page, live_server):
    page = browser_page
    make_user("alice", "Author")
    make_user("rita", "Reviewer")
    make_user("dave", "Deployer")
    _, secret = ApiKey.issue(name="app-server", scopes=["read"])

    # The author creates the prompt, watching the live preview, and submits it.
    sign_in(page, "alice")
    page.get_by_role("link", name="New prompt").first.click()
    page.get_by_label("Name").fill(NAME)
    author_writes(
        page,
        "Hello {{ customer_name }}, we got your refund request.",
        {"customer_name": "Ada"},
        "First reply",
        "Hello Ada, we got your refund request.",
    )
    expect(page.get_by_text(f"v1 of '{NAME}' is saved as a draft")).to_be_visible()
    submit_for_review(page)

    # A reviewer finds it in the inbox, compares, approves; a deployer activates it.
    sign_in(page, "rita")
    review_from_inbox(page, 1)
    sign_in(page, "dave")
    activate(page, 1, "first release")

    # The author writes v2 from v1 (live preview again) and submits it.
    sign_in(page, "alice")
    page.goto(f"/prompts/{NAME}/")
    page.get_by_role("link", name="New version").click()
    author_writes(
        page,
        "Hi {{ customer_name }}! Your refund is on its way.",
        {"customer_name": "Bo"},
        "Warmer wording",
        "Hi Bo! Your refund is on its way.",
    )
    expect(page.get_by_text(f"v2 of '{NAME}' is saved as a draft")).to_be_visible()
    submit_for_review(page)

    sign_in(page, "rita")
    review_from_inbox(page, 2)
    sign_in(page, "dave")
    activate(page, 2, "approved wording")
    assert fetch(live_server.url, secret)["version"] == 2
    assert "Hi {{ customer_name }}" in fetch(live_server.url, secret)["prompt"]

    # Roll back: the dialog names the target before confirming; the API agrees at once.
    page.get_by_role("link", name="Roll back").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator(".rollback-target")).to_contain_text("from v2 back to v1")
    dialog.get_by_label("Reason (required)").fill("customers confused by the new wording")
    dialog.get_by_role("button", name="Roll back").click()
    expect(page.get_by_text("went from v2 back to v1")).to_be_visible()
    assert fetch(live_server.url, secret)["version"] == 1
    assert Label.objects.get(prompt__name=NAME, name=PRODUCTION).version.number == 1

    # The audit trail tells the whole story.
    page.get_by_role("link", name="Audit trail").click()
    trail = page.locator(".events")
    for text in [
        "alice published v1",
        "alice published v2",
        "rita approved v1",
        "rita approved v2",
        "dave activated v1 in production (its first version there)",
        "dave activated v2 in production (was v1)",
        "dave rolled back production from v2 to v1",
        "customers confused by the new wording",
        "Warmer wording",
    ]:
        expect(trail).to_contain_text(text)
    assert Review.objects.filter(reviewer__username="rita", decision="approve").count() == 2


def test_author_cannot_approve_their_own_version(browser_page: Page):
    page = browser_page
    make_user("rita", "Author", "Reviewer")
    sign_in(page, "rita")
    page.get_by_role("link", name="New prompt").first.click()
    page.get_by_label("Name").fill(NAME)
    author_writes(page, "Hello {{ name }}", {"name": "Ada"}, "mine", "Hello Ada")
    submit_for_review(page)
    expect(page.get_by_text("someone else has to approve it")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    response = page.request.post(
        f"/prompts/{NAME}/-/v/1/review/", form={"decision": "approve", "csrfmiddlewaretoken": token}
    )
    assert response.status == 403
    assert PromptVersion.objects.get().status == "in_review" and not Review.objects.exists()


def test_script_tag_stays_text(browser_page: Page):
    page = browser_page
    make_user("alice", "Author")
    sign_in(page, "alice")
    page.get_by_role("link", name="New prompt").first.click()
    page.get_by_label("Name").fill(NAME)
    payload = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> {{ name }}'
    page.get_by_label("Prompt text").fill(payload)
    fill_samples(page, {"name": "<b>Ada</b>"})
    expect(page.locator("#live .prompt-text")).to_contain_text("<script>window.__xss = 1</script>")
    page.get_by_label("Reason for the change").fill("<script>window.__xss = 3</script>")
    page.get_by_role("button", name="Save as draft").click()
    expect(page.locator(".prompt-text").first).to_contain_text("<script>window.__xss = 1</script>")
    expect(page.locator(".prompt-text").first).to_contain_text("<b>Ada</b>")
    for url in [f"/prompts/{NAME}/", "/", "/audit/", f"/prompts/{NAME}/-/v/1/"]:
        page.goto(url)
        assert page.evaluate("window.__xss") is None, url
