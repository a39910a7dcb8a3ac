"""The authoring form: new prompt, new version, chat rows, live preview, and bad input that saves nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from promptreg.models import Prompt, PromptVersion
from tests.promptreg.dashboard_helpers import publish_as

NEW = reverse("promptreg:prompt-new")
PREVIEW = reverse("promptreg:authoring-preview")


def new_version_url(name="support-system"):
    return reverse("promptreg:version-new", args=[name])


def form_data(**overrides):
    data = {
        "name": "support-system",
        "prompt_type": "system",
        "description": "Support assistant",
        "tags": "support, Billing",
        "kind": "text",
        "text": "Hello {{ customer_name }}, how can I help?",
        "model": "gpt-4o-mini",
        "temperature": "0.2",
        "max_tokens": "300",
        "extra_config": '{"top_p": 0.9}',
        "commit_message": "First support prompt",
        "purpose": "Greets customers",
        "known_edge_cases": "Empty names",
        "samples_as_json": "on",  # the advanced JSON box; the fields are tested on their own
        "sample_values": '{"customer_name": "Ada"}',
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("role", ["deployer", "outsider"])
def test_only_authors_may_open_or_post_the_form(client, request, role):
    client.force_login(request.getfixturevalue(role))
    assert client.get(NEW).status_code == 403
    assert client.post(NEW, form_data()).status_code == 403
    assert client.post(PREVIEW, form_data()).status_code == 403
    assert not Prompt.objects.exists()


def test_author_creates_a_prompt_with_its_first_draft(client, author):
    client.force_login(author)
    assert client.get(NEW).status_code == 200
    response = client.post(NEW, form_data())
    assert response.status_code == 302
    assert response["Location"] == reverse("promptreg:version-detail", args=["support-system", 1])
    prompt = Prompt.objects.get(name="support-system")
    version = prompt.versions.get()
    assert (prompt.owner, prompt.description, sorted(t.name for t in prompt.tags.all())) == (
        author,
        "Support assistant",
        ["billing", "support"],
    )
    assert version.status == "draft" and version.created_by == author
    assert version.body == "Hello {{ customer_name }}, how can I help?"
    assert version.config == {"top_p": 0.9, "model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 300}
    assert version.sample_values == {"customer_name": "Ada"}
    assert (version.purpose, version.known_edge_cases, version.commit_message) == (
        "Greets customers",
        "Empty names",
        "First support prompt",
    )
    page = client.get(response["Location"]).content.decode()
    assert "saved as a draft" in page and "Hello Ada, how can I help?" in page


def test_chat_prompt_from_message_rows(client, author):
    client.force_login(author)
    data = form_data(kind="chat", text="")
    data.update(
        {
            "msg-0-type": "message",
            "msg-0-role": "system",
            "msg-0-content": "You help {{ customer_name }}.",
            "msg-1-type": "placeholder",
            "msg-1-name": "history",
            "msg-2-type": "message",
            "msg-2-role": "user",
            "msg-2-content": "{{ question }}",
        }
    )
    assert client.post(NEW, data).status_code == 302
    version = PromptVersion.objects.get()
    assert version.kind == "chat"
    assert version.body == [
        {"role": "system", "content": "You help {{ customer_name }}."},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{ question }}"},
    ]
    assert version.variables == ["customer_name", "question", "history"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"text": "Hello {{ customer_name"}, "is never closed"),
        ({"text": "Hello {{ user.name }}"}, "is not a variable name"),
        ({"text": "   "}, "The prompt text is empty."),
        ({"commit_message": ""}, "This field is required."),
        ({"name": ""}, "This field is required."),
        ({"name": "Customer Support"}, "Prompt names use lowercase letters"),
        (
            {"text": "x" * 1_000_000},
            "The prompt text is 1,000,000 characters long; the limit is 200,000 characters. Nothing was cut",
        ),
        (
            {"extra_config": "{not json"},
            "Other settings: not valid JSON, expecting property name enclosed in double quotes on line 1, column 2.",
        ),
        ({"sample_values": "[1, 2]"}, "The sample values must be a JSON object with one entry per variable"),
        ({"temperature": "7"}, "less than or equal to 2"),
    ],
)
def test_bad_input_shows_the_error_and_saves_nothing(client, author, overrides, message):
    client.force_login(author)
    response = client.post(NEW, form_data(**overrides))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing was saved" in html
    assert message in html.replace("&#x27;", "'")
    assert not Prompt.objects.exists() and not PromptVersion.objects.exists()


def test_an_existing_name_is_refused(client, author):
    publish_as(author)
    client.force_login(author)
    response = client.post(NEW, form_data())
    assert "already exists" in response.content.decode()
    assert PromptVersion.objects.count() == 1


def test_new_version_starts_from_the_chosen_version(client, author):
    publish_as(author, body="First {{ a }}", sample_values={"a": "1"})
    publish_as(author, body="Second {{ b }}")
    client.force_login(author)
    html = client.get(new_version_url(), {"from": 1}).content.decode()
    assert "First {{ a }}" in html and "Starting from v1" in html
    assert 'name="expected_latest" value="2"' in html and 'name="parent" value="1"' in html
    data = form_data(text="Third {{ a }}", commit_message="back to a", expected_latest="2", parent="1")
    data.pop("name")
    response = client.post(new_version_url(), data)
    assert response.status_code == 302
    v3 = PromptVersion.objects.get(number=3)
    assert v3.parent.number == 1 and v3.body == "Third {{ a }}"
    assert PromptVersion.objects.get(number=1).body == "First {{ a }}"  # the source is untouched


def test_stale_form_is_refused_and_nothing_is_overwritten(client, author, second_author):
    publish_as(author, body="v1 {{ a }}")
    client.force_login(author)
    data = form_data(text="mine {{ a }}", expected_latest="1")
    data.pop("name")
    publish_as(second_author, body="theirs {{ a }}", commit_message="someone else")  # published meanwhile
    response = client.post(new_version_url(), data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "someone published while you were editing" in html and "See what changed" in html
    assert "mine {{ a }}" in html  # the author's text is kept in the form
    assert list(PromptVersion.objects.values_list("number", "body")) == [(2, "theirs {{ a }}"), (1, "v1 {{ a }}")]


def test_an_author_changing_the_type_sees_why_on_that_field_and_nothing_is_saved(client, author):
    publish_as(author, body="v1 {{ a }}")
    client.force_login(author)
    data = form_data(text="v2 {{ a }}", prompt_type="extraction", expected_latest="1")
    data.pop("name")
    response = client.post(new_version_url(), data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "prompt_type" in errors and "decides the review policy" in errors["prompt_type"][0]
    assert "v2 {{ a }}" in response.content.decode()  # the author's text is kept in the form
    assert PromptVersion.objects.count() == 1 and Prompt.objects.get().prompt_type == "system"


def test_retired_prompt_cannot_get_a_new_version(client, author):
    publish_as(author)
    Prompt.objects.update(retired_at="2026-01-01T00:00:00Z")
    client.force_login(author)
    response = client.get(new_version_url())
    assert response.status_code == 302
    data = form_data(expected_latest="1")
    data.pop("name")
    client.post(new_version_url(), data)
    assert PromptVersion.objects.count() == 1


def test_chat_rows_add_remove_reorder_over_htmx_without_saving(client, author):
    client.force_login(author)
    data = form_data(kind="chat")
    data.update({"msg-0-role": "system", "msg-0-content": "first", "msg-1-role": "user", "msg-1-content": "second"})
    up = client.post(NEW, {**data, "op": "up-1"}, headers={"HX-Request": "true"})
    html = up.content.decode()
    assert html.lstrip().startswith('<div id="chat-rows"')
    assert html.index("second") < html.index("first")
    assert up["HX-Trigger-After-Settle"] and "rowsChanged" in up["HX-Trigger-After-Settle"]
    added = client.post(NEW, {**data, "op": "add"}, headers={"HX-Request": "true"}).content.decode()
    assert added.count('class="chat-row"') == 3
    removed = client.post(NEW, {**data, "op": "remove-0"}, headers={"HX-Request": "true"}).content.decode()
    assert removed.count('class="chat-row"') == 1 and "first" not in removed
    full = client.post(NEW, {**data, "op": "add"})  # without JavaScript: the whole page again
    assert full.status_code == 200 and b"<html" in full.content
    assert not PromptVersion.objects.exists()


def test_live_preview_reports_variables_and_compiles(client, author):
    client.force_login(author)
    response = client.post(
        PREVIEW,
        {
            "name": "support",
            "kind": "text",
            "text": "Hi {{ customer_name }} about {{ orderId }}",
            "samples_as_json": "on",
            "sample_values": '{"customer_name": "Ada", "unused_one": 1}',
        },
    )
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<div id="live"')
    assert "Hi Ada about {{ orderId }}" in html
    assert "Missing sample value: <code>orderId</code>" in html
    assert "Unused sample value: <code>unused_one</code>" in html
    assert "Use snake_case for variables: <code>orderId</code>" in html
    assert (
        '<div id="name-notes" hx-swap-oob="true"' in html and "has no role suffix" in html
    )  # shown next to the Name field
    bad = client.post(
        PREVIEW, {"kind": "text", "text": "Hi {{ name", "samples_as_json": "on", "sample_values": "{oops"}
    ).content.decode()
    assert (
        "is never closed" in bad
        and "Sample values: not valid JSON, expecting property name enclosed in double quotes on line 1, column 2."
        in bad
    )
    assert "name-notes" not in bad
    taken = client.post(PREVIEW, {"name": "Bad Name", "kind": "text", "text": "x"}).content.decode()
    assert "Prompt names use lowercase letters" in taken
    assert not PromptVersion.objects.exists()


def test_script_tags_stay_text_everywhere(client, author):
    body = "<script>alert(1)</script> {{ name }}"
    publish_as(
        author,
        body=body,
        sample_values={"name": "<img src=x onerror=alert(2)>"},
        commit_message="<script>alert(3)</script>",
    )
    publish_as(author, body=body + "!")
    client.force_login(author)
    pages = [
        reverse("promptreg:prompt-list"),
        reverse("promptreg:prompt-detail", args=["support-system"]),
        reverse("promptreg:version-detail", args=["support-system", 1]),
        reverse("promptreg:version-diff", args=["support-system"]) + "?from=1&to=2",
        reverse("promptreg:version-diff", args=["support-system"]) + "?from=1&to=2&view=inline",
        new_version_url(),
        reverse("promptreg:audit"),
    ]
    for url in pages:
        html = client.get(url).content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html, url
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(pages[2]).content.decode()
    preview = client.post(
        PREVIEW, {"kind": "text", "text": body, "samples_as_json": "on", "sample_values": '{"name": "<b>x</b>"}'}
    ).content.decode()
    assert "<script>alert" not in preview and "&lt;b&gt;x&lt;/b&gt;" in preview


def test_sample_values_as_one_field_per_variable_and_a_message_list_per_placeholder(client, author):
    client.force_login(author)
    # The live panel draws a field per variable (out of band) when the variables change, and keeps the JSON box in step.
    live = client.post(
        PREVIEW,
        {
            "kind": "text",
            "text": "Hi {{ customer_name }}, re {{ order_id }}",
            "sample-customer_name": "Ada",
            "sample_fields_for": "",
        },
    ).content.decode()
    assert '<div id="sample-fields" class="sample-fields" data-samples-from="fields" hx-swap-oob="true">' in live
    assert (
        '<textarea id="sample-customer_name" name="sample-customer_name" rows="1" class="sample-value" '
        'spellcheck="false">Ada</textarea>' in live
    )
    assert 'name="sample-order_id"' in live and "Hi Ada, re {{ order_id }}" in live
    assert (
        '<div id="sample-json" class="sample-json" data-samples-from="fields" hx-swap-oob="true" hidden>' in live
        and "&quot;customer_name&quot;: &quot;Ada&quot;" in live
    )
    same = client.post(
        PREVIEW,
        {
            "kind": "text",
            "text": "Hi {{ customer_name }}, re {{ order_id }}",
            "sample_fields_for": "customer_name:text,order_id:text",
        },
    ).content.decode()
    assert 'id="sample-fields"' not in same  # same variables: the fields (and the focus in them) are left alone
    chat = {
        "kind": "chat",
        "msg-0-type": "message",
        "msg-0-role": "system",
        "msg-0-content": "Help {{ customer_name }}.",
        "msg-1-type": "placeholder",
        "msg-1-name": "history",
        "sample-customer_name": "Ada",
        "sample-history-0-role": "user",
        "sample-history-0-content": "Where is my order?",
        "sample-history-1-role": "assistant",
        "sample-history-1-content": "Checking.",
        "sample-history-2-role": "user",
        "sample-history-2-content": " ",
    }
    preview = client.post(PREVIEW, chat).content.decode()
    assert 'data-sample-list="history"' in preview and "Where is my order?" in preview and "Checking." in preview
    assert preview.count('<li class="msg role-') == 3  # the system message and the two sample messages
    saved = client.post(NEW, {**form_data(name="chat-support-system", kind="chat"), **chat, "samples_as_json": ""})
    assert saved.status_code == 302
    assert PromptVersion.objects.get().sample_values == {
        "customer_name": "Ada",
        "history": [{"role": "user", "content": "Where is my order?"}, {"role": "assistant", "content": "Checking."}],
    }


def test_save_and_submit_in_one_click(client, author):
    client.force_login(author)
    response = client.post(NEW, {**form_data(), "then": "submit"})
    version = PromptVersion.objects.get()
    assert response.status_code == 302 and version.status == "in_review"
    assert "saved and waiting for review" in client.get(response["Location"]).content.decode()
