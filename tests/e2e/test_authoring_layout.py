"""The authoring form in Chromium: Save is never covered, New version starts from production, line endings are LF."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from promptreg.models import PRODUCTION, PromptVersion
from promptreg.services import MAX_BODY_CHARS, rollback
from tests.conftest import make_user
from tests.e2e.test_dashboard_story import sign_in
from tests.promptreg.dashboard_helpers import activate, approved, as_user

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(180),
]

VIEWPORTS = [(1280, 720), (1366, 900), (1920, 1080), (390, 844)]
BUTTONS = ("Save as draft", "Save and submit for review")
# What is at each button's centre, by `document.elementFromPoint`: "" when it is the button itself.
COVERED_JS = """(label) => {
  const button = [...document.querySelectorAll("button")].find((b) => b.textContent.trim() === label);
  const r = button.getBoundingClientRect();
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  if (x < 0 || y < 0 || x > innerWidth || y > innerHeight) return `off-screen at ${x},${y}`;
  const hit = document.elementFromPoint(x, y);
  return button.contains(hit) ? "" : (hit ? hit.outerHTML.slice(0, 120) : "nothing");
}"""


def paste(page: Page, label: str, text: str) -> None:
    """Put a large text in a field as a paste does, in one input event (typing 200,000 characters takes minutes)."""
    page.get_by_label(label).evaluate(
        "(el, text) => { el.value = text; el.dispatchEvent(new Event('input', {bubbles: true})); }", text
    )


def new_prompt_as_author(page: Page, name: str) -> None:
    make_user("alice", "Author")
    sign_in(page, "alice")
    page.goto("/new/")
    page.get_by_label("Name").fill(name)


def covered_positions(page: Page) -> list[str]:
    """Scroll from top to bottom in steps of 60 % of the window; where is any action button covered?"""
    problems = []
    height = page.evaluate("document.documentElement.scrollHeight")
    step = int(page.viewport_size["height"] * 0.6)
    for y in [*range(0, height, step), height]:
        page.evaluate(f"window.scrollTo(0, {y})")
        for label in BUTTONS:
            hit = page.evaluate(COVERED_JS, label)
            if hit:
                problems.append(f"{page.viewport_size} y={y} {label}: {hit}")
    return problems


def test_save_and_submit_are_clickable_at_every_scroll_position_and_size(browser_page: Page):
    page = browser_page
    new_prompt_as_author(page, "faq-answer-system")
    # A prompt at the size limit: 40 lines of text per screen would already cover Save before the fix.
    line = "Answer the customer {{ customer_name }} in a friendly tone, and cite the policy section.\n"
    text = (line * (MAX_BODY_CHARS // len(line) + 1))[:MAX_BODY_CHARS]
    paste(page, "Prompt text", text)
    expect(page.locator("#live .prompt-text")).to_contain_text("Answer the customer {{ customer_name }}")
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        assert covered_positions(page) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
    # A real mouse click, from the middle of the page, saves: the sample field is filled through its own input.
    page.set_viewport_size({"width": 1366, "height": 900})
    page.get_by_label("customer_name").fill("Ada")
    page.get_by_label("Reason for the change").fill("First FAQ prompt")
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight / 2)")
    page.get_by_role("button", name="Save as draft").click()
    expect(page.get_by_text("v1 of 'faq-answer-system' is saved as a draft")).to_be_visible()
    version = PromptVersion.objects.get()
    assert len(version.body) == MAX_BODY_CHARS and version.sample_values == {"customer_name": "Ada"}


def test_a_paste_over_the_limit_is_refused_with_the_limit_named(browser_page: Page):
    page = browser_page
    new_prompt_as_author(page, "long-system")
    paste(page, "Prompt text", "x" * (MAX_BODY_CHARS + 5))
    expect(
        page.locator("#live").get_by_text("The text is 200,005 characters long; the limit is 200,000 characters.")
    ).to_be_visible()
    page.get_by_label("Reason for the change").fill("too long")
    page.get_by_role("button", name="Save as draft").click()
    expect(
        page.get_by_text("The prompt text is 200,005 characters long; the limit is 200,000 characters. Nothing was cut")
    ).to_be_visible()
    assert not PromptVersion.objects.exists()


def test_new_version_starts_from_production_after_a_rollback(browser_page: Page):
    page = browser_page
    author, reviewer, deployer = (
        make_user("alice", "Author"),
        make_user("rita", "Reviewer"),
        make_user("dave", "Deployer"),
    )
    activate(approved(author, reviewer, body="Good v1 for {{ name }}"), deployer)
    activate(approved(author, reviewer, body="Bad v2 for {{ name }}"), deployer)
    rollback(name="support-system", actor=as_user(deployer), reason="v2 is rude")
    sign_in(page, "alice")
    page.goto("/prompts/support-system/")
    page.get_by_role("link", name="New version").click()
    expect(page.get_by_text("Starting from v1, what production serves now.")).to_be_visible()
    expect(page.get_by_label("Prompt text")).to_have_value("Good v1 for {{ name }}")
    page.get_by_label("Start from").select_option("2")
    page.get_by_role("button", name="Start over from this version").click()
    expect(page.get_by_text("Starting from v2; production serves v1.")).to_be_visible()
    expect(page.get_by_label("Prompt text")).to_have_value("Bad v2 for {{ name }}")
    assert PromptVersion.objects.get(prompt__name="support-system", labels__name=PRODUCTION).number == 1


def test_text_typed_in_the_browser_is_stored_with_lf_and_diffs_show_only_real_changes(browser_page: Page):
    page = browser_page
    new_prompt_as_author(page, "lines-system")
    page.get_by_label("Prompt text").fill("First line.\nSecond line.\nThird line.")
    page.get_by_label("Reason for the change").fill("three lines")
    page.get_by_role("button", name="Save as draft").click()
    expect(page.get_by_text("is saved as a draft")).to_be_visible()
    assert PromptVersion.objects.get().body == "First line.\nSecond line.\nThird line."  # the form posted \r\n
    page.get_by_role("link", name="New version").click()
    page.get_by_label("Prompt text").fill("First line.\nSecond line, changed.\nThird line.")
    page.get_by_label("Reason for the change").fill("one word")
    page.get_by_role("button", name="Save as draft").click()
    expect(page.get_by_text("v2 of 'lines-system' is saved as a draft")).to_be_visible()
    assert PromptVersion.objects.get(number=2).body == "First line.\nSecond line, changed.\nThird line."
    page.goto("/prompts/lines-system/-/compare/?from=1&to=2&view=inline")
    inserted, deleted = page.locator("#diff ins").all_inner_texts(), page.locator("#diff del").all_inner_texts()
    assert "changed" in "".join(inserted)
    assert not any("\n" in t or "\r" in t for t in inserted + deleted)  # no phantom line-break changes


def test_sample_fields_the_json_toggle_and_a_placeholder_message_list(browser_page: Page):
    page = browser_page
    new_prompt_as_author(page, "faq-chat-system")
    page.get_by_label("Chat").check()
    page.get_by_role("textbox", name="Message 1", exact=True).fill("You help {{ customer_name }}.")
    page.get_by_role("button", name="+ Add placeholder").click()
    page.get_by_role("button", name="+ Add message to history").click()
    page.get_by_role("textbox", name="history message", exact=True).fill("Where is my parcel?")
    page.get_by_label("customer_name", exact=True).fill("Ada")
    preview = page.locator("#live .chat-preview")
    expect(preview).to_contain_text("You help Ada.")
    expect(preview).to_contain_text("Where is my parcel?")
    # The JSON box follows the fields, and the fields follow the JSON box.
    page.get_by_label("Edit as JSON (advanced)").check()
    json_box = page.get_by_label("Sample values as JSON")
    expect(json_box).to_be_visible()
    expect(page.locator("#sample-fields")).to_be_hidden()
    expect(json_box).to_have_value(
        '{\n  "customer_name": "Ada",\n  "history": [\n    {\n      "role": "user",\n      "content": "Where is my '
        'parcel?"\n    }\n  ]\n}'
    )
    json_box.fill(
        '{"customer_name": "Bo", "history": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": '
        '"Hello!"}]}'
    )
    expect(preview).to_contain_text("You help Bo.")
    expect(preview).to_contain_text("Hello!")
    json_box.fill('{"customer_name": ')
    expect(page.locator("#live")).to_contain_text(
        "Sample values: not valid JSON, expecting value on line 1, column 18."
    )
    json_box.fill('{"customer_name": "Cy", "history": [{"role": "assistant", "content": "Hello!"}]}')
    expect(preview).to_contain_text("You help Cy.")
    page.get_by_label("Edit as JSON (advanced)").uncheck()
    page.wait_for_load_state("networkidle")  # the JSON box's own change (on blur) redraws the fields from it first
    expect(page.get_by_label("customer_name", exact=True)).to_have_value("Cy")
    expect(page.get_by_role("textbox", name="history message 1", exact=True)).to_have_value("Hello!")
    page.get_by_role("button", name="Remove history message 1").click()
    expect(preview.locator("li")).to_have_count(2)  # the system message and the (empty) user message
    page.get_by_label("Reason for the change").fill("chat FAQ")
    page.get_by_role("button", name="Save as draft").click()
    expect(page.get_by_text("is saved as a draft")).to_be_visible()
    assert PromptVersion.objects.get().sample_values == {"customer_name": "Cy"}
