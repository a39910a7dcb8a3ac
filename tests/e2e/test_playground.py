"""The playground in a real browser, with a real Celery worker and the fake provider: compare a draft version with
production on the version page (side by side, word diff, latency and tokens), then run the authoring form's
unsaved draft beside production."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from experiments.models import PlaygroundRun
from promptreg.models import LabelMove
from promptreg.services import label_move, version_publish
from tests.celery_worker import Worker, purge_queue
from tests.conftest import make_user
from tests.e2e.test_dashboard_story import sign_in
from tests.experiments.conftest import SERVER, fake_llm  # noqa: F401  (the fake provider fixture)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(180),
]


@pytest.fixture
def worker(fake_llm):
    purge_queue()
    started = Worker({"LLM_BASE_URL": fake_llm.base_url, "LLM_MODEL": "fake-model", "LLM_TIMEOUT": "5"})
    yield started.wait_ready()
    started.stop()


def test_compare_versions_and_run_the_draft_in_the_browser(browser_page, worker, fake_llm):
    page = browser_page
    make_user("alice", "Author")
    for body in (
        "Reply [[answer:Refunds take {{ days }} days]]",
        "Reply [[answer:Refunds take {{ days }} working days]]",
    ):
        version_publish(name="refund-answer", kind="text", body=body, commit_message="c", actor=SERVER)
    label_move(name="refund-answer", label="production", version=1, actor=SERVER, reason="first", override=True)
    moves = LabelMove.objects.count()
    sign_in(page, "alice")

    page.goto("/prompts/refund-answer/-/v/2/")
    panel = page.locator("#playground")
    panel.get_by_label("days").fill("5")
    expect(panel.get_by_label("v1 (production)")).to_be_checked()
    expect(panel.get_by_label("v2", exact=True)).to_be_checked()
    panel.get_by_role("button", name="Run").click()

    v2, v1 = panel.locator('[data-run="v2"]'), panel.locator('[data-run="v1"]')
    expect(v2.locator(".playground-output")).to_have_text("Refunds take 5 working days", timeout=30_000)
    expect(v1.locator(".playground-output")).to_have_text("Refunds take 5 days", timeout=30_000)
    expect(v2.locator("del")).to_have_text("working ")  # the baseline (this version) against production
    expect(v1.locator("ins")).to_have_count(0)
    expect(v1.locator(".playground-stats")).to_contain_text("fake-model")
    expect(v1.locator(".playground-stats")).to_contain_text("5 in / 4 out tokens")
    expect(v1.get_by_text("production")).to_be_visible()
    expect(panel.locator("#playground-result[hx-trigger]")).to_have_count(0)  # polling stopped

    page.goto("/prompts/refund-answer/-/new/")
    page.get_by_label("Prompt text").fill("Reply [[answer:Refunds take {{ days }} business days]]")
    page.locator("#sample-days").fill("3")
    expect(page.get_by_label("v1 (production)")).to_be_checked()
    page.get_by_role("button", name="Run the draft").click()
    draft = page.locator('[data-run="draft"] .playground-output')
    expect(draft).to_have_text("Refunds take 3 business days", timeout=30_000)
    expect(draft.locator("del")).to_have_text("business ")
    expect(page.locator('[data-run="v1"] .playground-output')).to_have_text("Refunds take 3 days")

    assert PlaygroundRun.objects.filter(state="done").count() == 4
    assert LabelMove.objects.count() == moves  # nothing moved


def test_without_a_worker_the_page_says_so_instead_of_spinning(browser_page, fake_llm, settings):
    settings.PLAYGROUND_PICKUP_SECONDS = 2
    page = browser_page
    make_user("alice", "Author")
    version_publish(name="refund-answer", kind="text", body="{{ q }}", commit_message="c", actor=SERVER)
    sign_in(page, "alice")
    page.goto("/prompts/refund-answer/-/v/1/")
    page.locator("#playground").get_by_label("q").fill("hello")
    page.locator("#playground").get_by_role("button", name="Run").click()
    expect(page.get_by_text("Waiting for a worker…")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text(
        "No worker picked up the run within 2 s — is the worker running?", timeout=10_000
    )
    expect(page.locator("#playground-result[hx-trigger]")).to_have_count(0)
    assert PlaygroundRun.objects.get().state == "failed" and fake_llm.requests == []
    purge_queue()
