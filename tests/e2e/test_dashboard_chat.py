"""Chat prompts in the browser: switch format, add, reorder and remove message rows live, then save."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from promptreg.models import PromptVersion
from tests.conftest import make_user
from tests.e2e.test_dashboard_story import fill_samples, sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(120),
]


def test_chat_rows_add_reorder_remove_then_save(browser_page: Page):
    page = browser_page
    make_user("alice", "Author")
    sign_in(page, "alice")
    page.goto("/new/")
    page.get_by_label("Name").fill("FAQ")
    expect(page.locator("#name-notes")).to_contain_text("Prompt names use lowercase letters")  # live, next to the field
    page.get_by_label("Name").fill("faq")
    expect(page.locator("#name-notes")).to_contain_text("has no role suffix")
    page.get_by_label("Name").fill("faq-chat-system")
    expect(page.locator("#name-notes")).to_be_empty()
    expect(page.locator("#chat-rows")).to_be_hidden()
    page.get_by_label("Chat").check()
    expect(page.get_by_label("Prompt text")).to_be_hidden()
    page.get_by_role("textbox", name="Message 1", exact=True).fill("You answer questions about {{ product }}.")
    page.get_by_role("textbox", name="Message 2", exact=True).fill("{{ question }}")
    page.get_by_role("button", name="+ Add message").click()
    expect(page.locator("#chat-rows .chat-row")).to_have_count(3)
    page.get_by_role("textbox", name="Message 3", exact=True).fill("Keep it short.")
    page.locator("#msg-2-role").select_option("system")
    page.get_by_role("button", name="Move message 3 up").click()  # the system note goes before the question
    expect(page.get_by_role("textbox", name="Message 2", exact=True)).to_have_value("Keep it short.")
    page.get_by_role("button", name="+ Add message").click()
    page.get_by_role("button", name="Remove message 4").click()
    expect(page.locator("#chat-rows .chat-row")).to_have_count(3)
    fill_samples(page, {"product": "Acme Router", "question": "How do I reset it?"})
    expect(page.locator("#live .chat-preview li")).to_have_count(3)
    expect(page.locator("#live .chat-preview")).to_contain_text("You answer questions about Acme Router.")
    page.get_by_label("Reason for the change").fill("FAQ bot")
    page.get_by_role("button", name="Save as draft").click()
    expect(page.get_by_text("is saved as a draft")).to_be_visible()
    version = PromptVersion.objects.get()
    assert version.kind == "chat"
    assert version.body == [
        {"role": "system", "content": "You answer questions about {{ product }}."},
        {"role": "system", "content": "Keep it short."},
        {"role": "user", "content": "{{ question }}"},
    ]
