"""Bad input at the API's edge: each is a 400 naming the field, never a 500, and nothing is stored."""

from __future__ import annotations

import base64
import json

import pytest
from django.urls import reverse

from experiments.models import Score
from promptreg.models import PromptVersion, Tag
from tests.promptreg.test_views_authoring import form_data
from tests.rollout.conftest import api_as  # noqa: F401  (a fixture)

NAME = "edge-system"


def langfuse_headers(api_key_factory, *scopes: str) -> dict[str, str]:
    key, secret = api_key_factory(*scopes, name="langfuse")
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{key.public_id}:{secret}".encode()).decode()}


def raw_post(client, path: str, text: str, **headers):
    return client.generic("POST", path, text.encode(), content_type="application/json", **headers)


V1_BODIES = {
    "nan_in_config": ('{"prompt": "Hi", "commit_message": "c", "config": {"temperature": NaN}}', "config.temperature"),
    "infinity_in_config": (
        '{"prompt": "Hi", "commit_message": "c", "config": {"temperature": -Infinity}}',
        "config.temperature",
    ),
    "overflowing_float": (
        '{"prompt": "Hi", "commit_message": "c", "config": {"temperature": 1e400}}',
        "config.temperature",
    ),
    "long_tag": (json.dumps({"prompt": "Hi", "commit_message": "c", "tags": ["t" * 65]}), "tags"),
    "long_model": (json.dumps({"prompt": "Hi", "commit_message": "c", "config": {"model": "m" * 201}}), "config.model"),
    "deep_nesting": (
        '{"prompt": "Hi", "commit_message": "c", "config": {"x": ' + "[" * 1000 + "]" * 1000 + "}}",
        "nested",
    ),
}


@pytest.mark.parametrize("text, field", V1_BODIES.values(), ids=V1_BODIES.keys())
def test_v1_publish_refuses_bad_input_with_a_400_naming_the_field(api_as, text, field):
    response = raw_post(api_as("write"), f"/api/v1/prompts/{NAME}/versions", text)
    assert response.status_code == 400, response.content[:300]
    assert field in response.json()["error"]["message"]
    assert not PromptVersion.objects.exists() and not Tag.objects.exists()


LANGFUSE_BODIES = {
    "nan_in_config": ('{"name": "%s", "prompt": "Hi", "config": {"temperature": NaN}}' % NAME, "config.temperature"),  # noqa: UP031 — the text has braces of its own
    "deep_nesting": ('{"name": "%s", "prompt": "Hi", "config": ' % NAME + "[" * 1000 + "]" * 1000 + "}", "nested"),  # noqa: UP031 — the text has braces of its own
    "long_tag": (json.dumps({"name": NAME, "prompt": "Hi", "tags": ["t" * 65]}), "tags"),
}


@pytest.mark.parametrize("text, field", LANGFUSE_BODIES.values(), ids=LANGFUSE_BODIES.keys())
def test_langfuse_create_refuses_bad_input_with_a_400_naming_the_field(client, api_key_factory, text, field):
    response = raw_post(client, "/api/public/v2/prompts", text, **langfuse_headers(api_key_factory, "write"))
    assert response.status_code == 400, response.content[:300]
    assert field in response.json()["message"]
    assert not PromptVersion.objects.exists()


SCORES = {
    "huge_integer_value": (
        '{"scores": [{"id": "s1", "prompt": "%s", "version": 1, "metrics": {"quality_score": %s}}]}'  # noqa: UP031 — the text has braces of its own
        % (NAME, "9" * 400),
        "quality_score",
    ),
    "month_13": (
        json.dumps(
            {
                "scores": [
                    {"id": "s1", "prompt": NAME, "version": 1, "metrics": {"q": 1}, "timestamp": "2026-13-45T00:00:00Z"}
                ]
            }
        ),
        "timestamp",
    ),
    "offset_99h": (
        json.dumps(
            {
                "scores": [
                    {
                        "id": "s1",
                        "prompt": NAME,
                        "version": 1,
                        "metrics": {"q": 1},
                        "timestamp": "2026-01-02T00:00:00+99:00",
                    }
                ]
            }
        ),
        "timestamp",
    ),
    "huge_experiment_id": (
        json.dumps(
            {
                "scores": [
                    {
                        "id": "s1",
                        "prompt": NAME,
                        "version": 1,
                        "session_id": "s",
                        "experiment": 10**30,
                        "metrics": {"q": 1},
                    }
                ]
            }
        ),
        "experiment",
    ),
}


@pytest.mark.parametrize("text, field", SCORES.values(), ids=SCORES.keys())
def test_scores_refuse_bad_input_with_a_400_naming_the_field(api_as, publish, text, field):
    publish(name=NAME)
    response = raw_post(api_as("write"), "/api/v1/scores", text)
    assert response.status_code == 400, response.content[:300]
    assert field in response.json()["error"]["message"]
    assert not Score.objects.exists()


HUGE = "9" * 30
QUERIES = [
    "/api/v1/prompts/%s?version=" + HUGE,
    "/api/v1/evaluations/" + HUGE,
    "/api/v1/experiments/" + HUGE,
    "/api/v1/datasets/" + HUGE,
]


@pytest.mark.parametrize("path", QUERIES)
def test_huge_numbers_in_the_url_are_not_a_500(api_as, publish, path):
    publish(name=NAME)
    response = api_as("read").get(path.replace("%s", NAME))
    assert response.status_code in (400, 404), response.content[:300]


def test_a_form_over_the_upload_limit_says_so_and_saves_nothing(client, author):
    client.force_login(author)
    response = client.post(
        reverse("promptreg:prompt-new"), {"name": "big-system", "kind": "text", "text": "x" * (1024 * 1024 + 1)}
    )
    assert response.status_code == 413
    assert "larger than the 1 MiB a form may carry" in response.content.decode()
    assert not PromptVersion.objects.exists()


def test_nan_in_the_dashboard_config_is_a_form_error(client, author):
    client.force_login(author)
    response = client.post(reverse("promptreg:prompt-new"), form_data(extra_config='{"top_p": NaN}'))
    assert response.status_code == 200
    assert "Other settings.top_p is nan" in response.content.decode()
    assert not PromptVersion.objects.exists()
