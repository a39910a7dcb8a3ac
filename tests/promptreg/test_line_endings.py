"""Line endings: `\r\n` and `\r` become `\n` on every input path, and a data migration rewrites stored versions."""

from __future__ import annotations

import base64
import importlib
import json

from django.apps import apps
from django.urls import reverse

from promptreg.files import import_dir
from promptreg.models import PromptVersion
from tests.promptreg.test_views_authoring import form_data

CRLF = "Hello {{ name }},\r\nthanks for writing.\rBye\r\n"
LF = "Hello {{ name }},\nthanks for writing.\nBye\n"


def test_the_dashboard_form_stores_lf(client, author):
    client.force_login(author)
    response = client.post(
        reverse("promptreg:prompt-new"),
        form_data(text=CRLF, commit_message="line one\r\nline two", sample_values='{"name": "A\\r\\nB"}'),
    )
    assert response.status_code == 302
    version = PromptVersion.objects.get()
    assert (
        version.body == LF
        and version.commit_message == "line one\nline two"
        and version.sample_values == {"name": "A\nB"}
    )
    assert version.content_hash == PromptVersion.hash_content("text", LF, version.config)


def test_the_api_and_the_langfuse_route_store_lf(client, api_key_factory):
    _, secret = api_key_factory("write")
    response = client.post(
        "/api/v1/prompts/support-system/versions",
        json.dumps(
            {
                "type": "chat",
                "prompt": [{"role": "system", "content": "a\r\nb"}, {"type": "placeholder", "name": "history"}],
                "commit_message": "c",
            }
        ),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 201 and response.json()["prompt"][0]["content"] == "a\nb"
    key, secret = api_key_factory("admin", name="lf")
    basic = base64.b64encode(f"{key.public_id}:{secret}".encode()).decode()
    response = client.post(
        "/api/public/v2/prompts",
        {"name": "faq-system", "prompt": CRLF},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    assert response.status_code == 201 and response.json()["prompt"] == LF
    stored = {v.prompt.name: v.body for v in PromptVersion.objects.select_related("prompt")}
    assert stored == {
        "support-system": [{"role": "system", "content": "a\nb"}, {"type": "placeholder", "name": "history"}],
        "faq-system": LF,
    }


def test_a_file_with_crlf_imports_as_lf_and_is_then_unchanged(db, tmp_path):
    (tmp_path / "support-system.txt").write_bytes(
        b"PROMPT: support-system\r\nREASON: first\r\n---\r\n" + CRLF.encode() + b"\r\n"
    )
    first = import_dir(tmp_path)
    assert [v.body for v in first.published] == [LF]
    again = import_dir(tmp_path)
    assert again.published == [] and again.unchanged == ["support-system"] and PromptVersion.objects.count() == 1


def test_the_migration_rewrites_stored_versions_and_their_hash(publish):
    version = publish(body="Hi {{ name }}")
    other = publish(name="chat-system", kind="chat", body=[{"role": "user", "content": "x"}])
    # Rows as an older release stored them (update() bypasses the immutability check, as the migration does).
    PromptVersion.objects.filter(pk=version.pk).update(body=CRLF, purpose="p\r\nq", content_hash="old")
    PromptVersion.objects.filter(pk=other.pk).update(
        body=[{"role": "user", "content": "x\r\ny"}], content_hash="old-chat"
    )
    migration = importlib.import_module("promptreg.migrations.0006_normalize_line_endings")
    migration.forwards(apps, None)
    version.refresh_from_db()
    other.refresh_from_db()
    assert version.body == LF and version.purpose == "p\nq"
    assert version.content_hash == PromptVersion.hash_content("text", LF, version.config)
    assert other.body == [{"role": "user", "content": "x\ny"}] and other.content_hash == PromptVersion.hash_content(
        "chat", other.body, {}
    )
