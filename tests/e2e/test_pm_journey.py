"""A product manager's whole journey in Chromium, all by clicking, on a 3,000-character RAG prompt:
write → submit → a reviewer picks the evaluation dataset and requests changes → the author revises from
"Waiting for your changes" → the reviewer sees what changed since their review and approves → Evaluate (run by the
worker's code against the local OpenAI-compatible stub) → a deployer activates it through the gates.

It also takes the README's authoring screenshot (docs/screenshots/authoring.png)."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection
from playwright.sync_api import Page, expect

from experiments.eval_datasets import dataset_create
from experiments.models import EvalRun, PromptEvalSettings, RunState
from experiments.runner import run_execute
from promptreg.models import PRODUCTION, Label, MoveVia, PromptVersion
from promptreg.services import Actor
from tests.conftest import make_user
from tests.e2e.conftest import readme_screenshot
from tests.e2e.test_dashboard_story import fill_samples, sign_in
from tests.experiments.conftest import fake_llm  # noqa: F401  (the OpenAI-compatible stub)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(240),
]

NAME = "refund-answer-rag"
RULES = [
    "You are the returns assistant of Northwind Outfitters, answering customers by e-mail.",
    "Use only the policy excerpts under CONTEXT; if they do not answer the question, say that you will pass it to a "
    "colleague.",
    "Quote the policy section number you rely on, in brackets, after the sentence that uses it.",
    "Write at most five sentences, in plain words, without bullet points or headings.",
    "Never promise a refund amount, a date or an exception that the context does not state.",
    "If the customer is upset, acknowledge it in one short sentence before answering.",
    "Do not ask for card numbers, passwords or full addresses; an order number is enough.",
    "Answer in the language of the question; keep product names as written.",
]


def prompt_text() -> str:
    """A realistic prompt of about 3,000 characters: rules, repeated as numbered guidance, then the inputs."""
    lines, n = [], 0
    while sum(len(line) + 1 for line in lines) < 2_850:
        lines.append(f"{n + 1}. {RULES[n % len(RULES)]}")
        n += 1
    return "\n".join(lines) + "\n\nCONTEXT:\n{{ context }}\n\nQUESTION:\n{{ question }}\n"


def test_a_pm_writes_gets_review_evaluates_and_ships(browser_page: Page, fake_llm):
    page = browser_page
    make_user("alice", "Author")
    make_user("rita", "Reviewer")
    make_user("dave", "Deployer")
    cases = [
        {
            "variables": {
                "question": f"Can I return item {i}? [[answer:Yes, a refund within 30 days [4.1].]]",
                "context": "4.1 Refunds within 30 days.",
            },
            "expected": "refund",
        }
        for i in range(6)
    ]
    dataset_create(
        name="refund-golden",
        scorers=[{"name": "contains_any", "keywords": ["refund"]}],
        cases=cases,
        actor=Actor(via=MoveVia.CLI),
    )
    text = prompt_text()
    assert 2_900 <= len(text) <= 3_100

    # The PM writes the prompt: one field per variable, the compiled preview live beside the editor.
    sign_in(page, "alice")
    page.get_by_role("link", name="New prompt").first.click()
    page.get_by_label("Name").fill(NAME)
    page.get_by_label("Prompt type").select_option(label="RAG query")
    page.get_by_label("Prompt text").fill(text)
    fill_samples(
        page,
        {
            "context": "4.1 Refunds are accepted within 30 days of delivery.",
            "question": "Can I still return my boots after 40 days?",
        },
    )
    expect(page.locator("#live .prompt-text")).to_contain_text("QUESTION:\nCan I still return my boots after 40 days?")
    page.get_by_label("Reason for the change").fill("First returns assistant, grounded in the policy")
    page.evaluate("window.scrollTo(0, 0)")
    readme_screenshot(page, "authoring.png")
    page.get_by_role("button", name="Save and submit for review").click()
    expect(page.get_by_text(f"v1 of '{NAME}' is saved and waiting for review.")).to_be_visible()
    assert PromptVersion.objects.get(prompt__name=NAME).body == text  # 3,000 characters, LF line endings

    # The reviewer picks the evaluation dataset (authors cannot) and sends the version back.
    sign_in(page, "rita")
    page.get_by_role("link", name="Reviews").click()
    page.get_by_role("row").filter(has_text=NAME).get_by_role("link", name="Review").click()
    page.get_by_label("Evaluation dataset").select_option(label="refund-golden")
    page.locator("#evaluation-panel").get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text(f"Evaluation dataset of '{NAME}': refund-golden.")).to_be_visible()
    page.get_by_label("Comment").fill("Say plainly what happens after the 30 days: offer store credit.")
    page.get_by_role("button", name="Request changes").click()
    expect(page.locator("#review-panel .badge.status-changes_requested")).to_be_visible()

    # The author hears about it on the home page and in the menu, and revises from there.
    sign_in(page, "alice")
    expect(page.locator(".mainnav .count.changes")).to_have_text("1 waiting for your changes")
    waiting = page.locator("#waiting-for-changes")
    expect(waiting).to_contain_text("Say plainly what happens after the 30 days")
    expect(waiting).to_contain_text("rita")
    waiting.get_by_role("link", name="Revise v1").click()
    expect(page.get_by_label("context", exact=True)).to_have_value(
        "4.1 Refunds are accepted within 30 days of delivery."
    )
    page.get_by_label("Prompt text").fill(
        text.replace("QUESTION:", "After 30 days, offer store credit instead of a refund.\n\nQUESTION:")
    )
    page.get_by_label("Reason for the change").fill("Store credit after the return window, as rita asked")
    page.get_by_role("button", name="Save and submit for review").click()
    expect(page.get_by_text(f"v2 of '{NAME}' is saved and waiting for review.")).to_be_visible()
    expect(page.locator(".mainnav .count.changes")).to_have_count(0)

    # The reviewer sees what changed since their review, and approves.
    sign_in(page, "rita")
    page.get_by_role("link", name="Reviews").click()
    page.get_by_role("row").filter(has_text=NAME).get_by_role("link", name="Review").click()
    reviewed = page.locator("#reviewed-diff")
    expect(reviewed.get_by_role("heading", name="Changes since the reviewed version, v1")).to_be_visible()
    expect(reviewed.locator("ins")).to_contain_text("store credit")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#review-panel .badge.status-approved")).to_be_visible()

    # The author evaluates v2 from its page; the worker's code runs it against the stub while the page polls.
    sign_in(page, "alice")
    page.goto(f"/prompts/{NAME}/")
    page.get_by_role("link", name="v2", exact=True).first.click()
    page.locator("#evaluation-panel").get_by_role("button", name="Evaluate", exact=True).click()
    expect(page.get_by_text("Evaluation queued: v2 on 'refund-golden'")).to_be_visible()
    run = EvalRun.objects.get(version__number=2, version__prompt__name=NAME)
    worker = threading.Thread(target=lambda: (run_execute(run.pk), connection.close()))
    worker.start()
    page.get_by_role("heading", name="Metrics").wait_for(timeout=60_000)
    worker.join(timeout=60)
    run.refresh_from_db()
    assert run.state == RunState.DONE and run.metrics["quality_score"]["mean"] == 1.0
    sent = json.loads(fake_llm.requests[-1]["body"])["messages"]
    assert [m["role"] for m in sent] == ["user"]  # a RAG query prompt is the user message (System prompts: system)

    # The deployer activates it: every gate passes (review, eval), so no override is needed.
    sign_in(page, "dave")
    page.goto(f"/prompts/{NAME}/-/v/2/")
    expect(page.get_by_text("Ready for production: every gate passes.")).to_be_visible()
    page.get_by_role("link", name="Activate").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Reason (required)").fill("Reviewed by rita, evaluation passed")
    dialog.get_by_role("button", name="Activate").click()
    expect(page.get_by_text(f"v2 of '{NAME}' is now live in production.")).to_be_visible()
    assert Label.objects.get(prompt__name=NAME, name=PRODUCTION).version.number == 2
    assert PromptEvalSettings.objects.get(prompt__name=NAME).dataset.name == "refund-golden"
