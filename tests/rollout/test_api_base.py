"""The /api/v1 base: JSON the database cannot store is a 400 on every endpoint, and errors are documented."""

from __future__ import annotations

import json

import pytest

from promptreg.models import PromptVersion
from promptreg.storable import unstorable_text


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"prompt": "a\u0000b"}, "body.prompt contains a NUL character"),
        ({"config": {"k": ["ok", "\udb95"]}}, "body.config.k.1 contains an unpaired UTF-16 surrogate"),
        ({"config": {"\u0000": 1}}, "body.config key contains a NUL character"),
        ({"scores": [{"metrics": {"q": float("nan")}}]}, "body.scores.0.metrics.q is nan"),
        ({"k": [1.5, float("-inf")]}, "body.k.1 is -inf"),
        ({"n": 2**63}, "body.n is an integer out of range"),
        ({"n": -(2**63 - 1), "m": 1e308, "ok": True}, None),
        ({"prompt": "fine ü 😀", "n": 1, "x": None}, None),
    ],
)
def test_unstorable_text_names_where(value, problem):
    found = unstorable_text(value)
    assert (found or "").startswith(problem) if problem else found is None


@pytest.mark.parametrize(
    "body",
    [{"prompt": "a\u0000b", "commit_message": "x"}, {"prompt": "ok", "commit_message": "x", "config": {"k": "\udb95"}}],
)
def test_publish_refuses_unstorable_text(client, api_key_factory, body):
    _, secret = api_key_factory("admin")
    response = client.post(
        "/api/v1/prompts/a-system/versions",
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    assert not PromptVersion.objects.exists()


def test_every_operation_documents_the_common_errors(client, db):
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["paths"]
    for operations in schema["paths"].values():
        for operation in operations.values():
            assert {"400", "401", "403", "404", "413"} <= set(operation["responses"]), operation["operationId"]
