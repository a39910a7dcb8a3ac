"""POST /api/v1/prompts/{name}/run against the fake provider: the answer, overrides, and the 4xx/502/504 paths."""

from __future__ import annotations

import json

import pytest

from experiments.models import PlaygroundRun
from promptreg.models import Label, LabelMove
from promptreg.services import label_move
from tests.experiments.conftest import SERVER


def post(client, path, body, secret):
    return client.post(path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture
def secret(api_key_factory):
    return api_key_factory("write")[1]


@pytest.fixture
def versions(publish):
    v1 = publish(name="support-answer", body="Old: {{ question }}", config={"model": "model-a", "temperature": 0.7})
    v2 = publish(name="support-answer", body="New: {{ question }}", config={"model": "model-a"})
    label_move(name="support-answer", label="production", version=1, actor=SERVER, reason="first", override=True)
    return v1, v2


def test_run_production_by_default_with_output_model_latency_and_usage(client, secret, fake_llm, versions, settings):
    settings.LLM_PRICES = {"model-a": {"input": 1.0, "output": 2.0}}
    moves = LabelMove.objects.count()

    response = post(client, "/api/v1/prompts/support-answer/run", {"variables": {"question": "where?"}}, secret)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["output"] == "echo: Old: where?" and body["version"] == 1 and body["model"] == "model-a"
    assert body["latency_ms"] > 0
    # The fake counts words: "Old: where?" is 2 in, "echo: Old: where?" 3 out.
    assert body["usage"] == {"input_tokens": 2, "output_tokens": 3}
    assert body["cost_usd"] == pytest.approx((2 * 1.0 + 3 * 2.0) / 1e6)
    sent = json.loads(fake_llm.requests[0]["body"])
    assert sent["model"] == "model-a" and sent["temperature"] == 0.7
    assert sent["messages"] == [{"role": "system", "content": "Old: where?"}]  # a system-type text prompt
    # Nothing moved, nothing stored.
    assert LabelMove.objects.count() == moves and Label.objects.get(name="production").version_id == versions[0].pk
    assert PlaygroundRun.objects.count() == 0


def test_a_version_number_and_config_overrides(client, secret, fake_llm, versions):
    response = post(
        client,
        "/api/v1/prompts/support-answer/run",
        {"version": 2, "variables": {"question": "[[answer:Hi there]]"}, "config": {"model": "model-b", "seed": 3}},
        secret,
    )
    assert response.status_code == 200, response.content
    assert response.json()["output"] == "Hi there" and response.json()["version"] == 2
    assert response.json()["model"] == "model-b" and response.json()["cost_usd"] is None
    sent = json.loads(fake_llm.requests[0]["body"])
    assert sent["model"] == "model-b" and sent["seed"] == 3


def test_provider_failure_is_a_502_with_its_message(client, secret, fake_llm, versions):
    response = post(client, "/api/v1/prompts/support-answer/run", {"variables": {"question": "[[status:500]]"}}, secret)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "provider_error" and "HTTP 500" in error["message"]
    assert len(fake_llm.requests) == 1  # one attempt, no retries


def test_provider_timeout_is_a_504(client, secret, fake_llm, versions, settings):
    settings.PLAYGROUND_TIMEOUT = 0.3
    fake_llm.hang_seconds = 1.0
    response = post(client, "/api/v1/prompts/support-answer/run", {"variables": {"question": "[[hang]]"}}, secret)
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "provider_timeout" and "timed out after 0.3 s" in error["message"]


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"variables": {}}, 400, "invalid_variables"),
        ({"variables": {"question": "x"}, "version": 9}, 404, "version_not_found"),
        ({"variables": {"question": "x"}, "label": "canary"}, 404, "label_not_found"),
        ({"variables": {"question": "x"}, "label": "production", "version": 1}, 400, "invalid"),
        ({"variables": {"question": "x"}, "config": {"base_url": "http://evil"}}, 400, "invalid_config"),
        ({"variables": ["x"]}, 400, "invalid"),
    ],
)
def test_bad_input_is_a_json_4xx_and_calls_nothing(client, secret, fake_llm, versions, body, status, code):
    response = post(client, "/api/v1/prompts/support-answer/run", body, secret)
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert fake_llm.requests == []


def test_needs_the_write_scope(client, api_key_factory, fake_llm, versions):
    _, read_only = api_key_factory("read")
    response = post(client, "/api/v1/prompts/support-answer/run", {"variables": {"question": "x"}}, read_only)
    assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope"
    assert post(client, "/api/v1/prompts/nope/run", {}, read_only).status_code == 403
    assert fake_llm.requests == []


def test_included_prompts_are_resolved_as_a_fetch_would(client, secret, fake_llm, publish):
    publish(name="shared-tone", body="Be kind.")
    label_move(name="shared-tone", label="production", version=1, actor=SERVER, reason="first", override=True)
    publish(name="support-answer", body="@@@langfusePrompt:name=shared-tone|label=production@@@ Answer {{ q }}")
    response = post(client, "/api/v1/prompts/support-answer/run", {"version": 1, "variables": {"q": "why"}}, secret)
    assert response.status_code == 200, response.content
    assert response.json()["output"] == "echo: Be kind. Answer why"
