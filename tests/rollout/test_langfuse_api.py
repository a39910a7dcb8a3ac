"""Langfuse wire-format details the SDK tests do not reach: raw paths, error bodies, methods."""

from __future__ import annotations

import base64
import json

import pytest

from promptreg.models import Label, LabelMove, PromptVersion


@pytest.fixture
def basic(api_key_factory):
    def make(*scopes: str) -> dict[str, str]:
        key, secret = api_key_factory(*scopes)
        token = base64.b64encode(f"{key.public_id}:{secret}".encode()).decode()
        return {"HTTP_AUTHORIZATION": f"Basic {token}"}

    return make


def post(client, headers, body, path="/api/public/v2/prompts"):
    return client.post(path, body, content_type="application/json", **headers)


def patch(client, headers, path, body):
    return client.patch(path, body, content_type="application/json", **headers)


def test_folder_name_is_url_encoded_and_old_version_path_works(client, basic):
    admin = basic("admin")
    assert post(client, admin, {"name": "billing/refund-extraction", "prompt": "v1"}).status_code == 201
    assert post(client, admin, {"name": "billing/refund-extraction", "prompt": "v2"}).status_code == 201
    got = client.get("/api/public/v2/prompts/billing%2Frefund-extraction?version=1", **admin)
    assert got.status_code == 200
    assert got.json() | {"createdAt": None, "updatedAt": None, "id": None} == {
        "id": None,
        "createdAt": None,
        "updatedAt": None,
        "projectId": "promptreg",
        "createdBy": "API key test-key",
        "name": "billing/refund-extraction",
        "version": 1,
        "type": "text",
        "prompt": "v1",
        "config": {},
        "labels": [],
        "tags": [],
        "commitMessage": "Created via the Langfuse API",
        "resolutionGraph": None,
    }
    # Langfuse 2.x SDKs PATCH `/version/N`; 3.x and later `/versions/N`.
    moved = patch(
        client, admin, "/api/public/v2/prompts/billing%2Frefund-extraction/version/1", {"newLabels": ["staging"]}
    )
    assert moved.status_code == 200 and moved.json()["labels"] == ["staging"]
    assert Label.objects.get(name="staging").version.number == 1


def test_no_trailing_slash_and_json_404_elsewhere(client, basic):
    read = basic("read")
    response = client.get("/api/public/v2/prompts/missing-prompt", **read)
    assert response.status_code == 404
    assert response.json() == {
        "message": "Prompt not found: 'missing-prompt' with label 'production'",
        "error": "LangfuseNotFoundError",
    }
    assert client.get("/api/public/ingestion", **read).json()["error"] == "LangfuseNotFoundError"
    slash = post(client, basic("write"), {"name": "x-system", "prompt": "v1"}, path="/api/public/v2/prompts/")
    assert slash.status_code == 404 and slash.json()["error"] == "LangfuseNotFoundError"  # never a redirect
    assert not PromptVersion.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"prompt": "x"}, "name is required"),
        ({"name": "Not Valid", "prompt": "x"}, "lowercase letters"),
        ({"name": "a-system", "prompt": "{{ user.name }}"}, "is not a variable name"),
        ({"name": "a-system", "prompt": "x", "config": [1]}, "config must be a JSON object"),
        ({"name": "a-system", "prompt": "x", "type": "chat"}, "list of messages"),
        ({"name": "a-system", "prompt": "x", "labels": ["Bad Label"]}, "Label names"),
        ({"name": "a-system", "prompt": "x", "tags": "one"}, "tags must be a list"),
    ],
)
def test_bad_create_is_a_400_that_changes_nothing(client, basic, body, message):
    response = post(client, basic("admin"), body)
    assert response.status_code == 400
    assert message in response.json()["message"] and response.json()["error"] == "InvalidRequestError"
    assert not PromptVersion.objects.exists() and not LabelMove.objects.exists()


def test_bad_requests_on_existing_prompt(client, basic):
    admin = basic("admin")
    post(client, admin, {"name": "a-system", "prompt": "x"})
    both = client.get("/api/public/v2/prompts/a-system?version=1&label=latest", **admin)
    assert both.status_code == 400 and "not both" in both.json()["message"]
    assert client.get("/api/public/v2/prompts/a-system?version=abc", **admin).status_code == 400
    latest = patch(client, admin, "/api/public/v2/prompts/a-system/versions/1", {"newLabels": ["latest"]})
    assert latest.status_code == 400 and "reserved" in latest.json()["message"]
    missing = patch(client, admin, "/api/public/v2/prompts/a-system/versions/9", {"newLabels": ["staging"]})
    assert missing.status_code == 404 and missing.json()["error"] == "LangfuseNotFoundError"
    garbage = client.post("/api/public/v2/prompts", "{not json", content_type="application/json", **admin)
    assert garbage.status_code == 400 and garbage.json()["error"] == "InvalidRequestError"
    assert client.delete("/api/public/v2/prompts/a-system", **admin).status_code == 405
    assert not LabelMove.objects.exists()


def test_re_adding_a_label_is_a_no_op(client, basic):
    admin = basic("admin")
    post(client, admin, {"name": "a-system", "prompt": "x", "labels": ["staging"]})
    again = patch(client, admin, "/api/public/v2/prompts/a-system/versions/1", {"newLabels": ["staging"]})
    assert again.status_code == 200 and again.json()["labels"] == ["staging", "latest"]
    assert LabelMove.objects.count() == 1


def test_auth_is_required(client, basic, api_key_factory):
    assert client.get("/api/public/v2/prompts/a-system").json()["error"] == "UnauthorizedError"
    key, _ = api_key_factory("read")
    wrong = base64.b64encode(f"{key.public_id}:sk-pr-nope".encode()).decode()
    assert client.get("/api/public/v2/prompts/a-system", HTTP_AUTHORIZATION=f"Basic {wrong}").status_code == 401
    assert client.get("/api/public/v2/prompts/a-system", HTTP_AUTHORIZATION="Basic %%%").status_code == 401
    assert client.get("/api/public/projects", **basic("read")).json()["data"][0]["id"] == "promptreg"


def test_list_prompts(client, basic):
    admin = basic("admin")
    post(client, admin, {"name": "a-system", "prompt": "x", "tags": ["faq"]})
    post(client, admin, {"name": "a-system", "prompt": "y", "labels": ["staging"], "config": {"model": "m"}})
    post(client, admin, {"name": "b-system", "prompt": "z"})
    listed = client.get("/api/public/v2/prompts?tag=faq", **admin).json()
    assert listed["meta"] == {"page": 1, "limit": 50, "totalItems": 1, "totalPages": 1}
    entry = listed["data"][0]
    assert (entry["name"], entry["versions"], entry["labels"], entry["tags"], entry["lastConfig"]) == (
        "a-system",
        [1, 2],
        ["latest", "staging"],
        ["faq"],
        {"model": "m"},
    )
    assert client.get("/api/public/v2/prompts?page=2&limit=1", **admin).json()["data"][0]["name"] == "b-system"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "a-system", "prompt": "a\u0000b"},
        {"name": "a-system", "prompt": "ok", "config": {"k": "\udb95"}},
        {"name": "a-system", "prompt": "ok", "commitMessage": "x\u0000"},
    ],
)
def test_text_the_database_cannot_store_is_a_400(client, basic, body):
    response = client.post(
        "/api/public/v2/prompts", json.dumps(body), content_type="application/json", **basic("admin")
    )
    assert response.status_code == 400 and "contains" in response.json()["message"]
    assert not PromptVersion.objects.exists()
    assert client.get("/api/public/v2/prompts/a%00b?label=x", **basic("read")).status_code == 400


def test_the_fetch_is_served_from_the_serving_cache_and_a_label_move_shows_at_once(
    client, basic, ungated, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from promptreg.models import MoveVia
    from promptreg.services import Actor, label_move

    admin = basic("admin")
    with django_capture_on_commit_callbacks(execute=True):
        post(client, admin, {"name": "a-system", "prompt": "one", "labels": ["production"]})
        post(client, admin, {"name": "a-system", "prompt": "two"})
    url = "/api/public/v2/prompts/a-system"
    reader = basic("read")
    assert client.get(url, **reader).json()["prompt"] == "one"
    with CaptureQueriesContext(connection) as queries:
        warm = client.get(url, **reader)
    assert warm.json()["labels"] == ["production"]
    from django.conf import settings

    if settings.REDIS_URL:
        assert len(queries) == 0
    with django_capture_on_commit_callbacks(execute=True):
        label_move(
            name="a-system", label="production", version=2, actor=Actor(via=MoveVia.CLI), reason="v2", override=True
        )
    assert client.get(url, **reader).json() | {"labels": None} == client.get(url + "?version=2", **reader).json() | {
        "labels": None
    }
    assert client.get(url, **reader).json()["labels"] == ["production", "latest"]


def test_the_fetch_needs_the_public_id_of_the_secrets_key_and_the_read_scope(client, basic, ungated, api_key_factory):
    read_key, read_secret = api_key_factory("read", name="reader")
    other_key, _ = api_key_factory("read", name="other")
    post(client, basic("admin"), {"name": "a-system", "prompt": "one", "labels": ["production"]})
    url = "/api/public/v2/prompts/a-system"
    right = base64.b64encode(f"{read_key.public_id}:{read_secret}".encode()).decode()
    mixed = base64.b64encode(f"{other_key.public_id}:{read_secret}".encode()).decode()
    assert client.get(url, HTTP_AUTHORIZATION=f"Basic {right}").status_code == 200
    assert client.get(url, HTTP_AUTHORIZATION=f"Basic {mixed}").json()["error"] == "UnauthorizedError"
    refused = client.get(url, **basic("write"))
    assert (refused.status_code, refused.json()["error"]) == (403, "AccessDeniedError")
