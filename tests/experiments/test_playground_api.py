"""POST /api/v1/prompts/{name}/run against the fake provider: the answer, overrides, and the 4xx/502/504 paths."""

from __future__ import annotations

import json

import pytest

from experiments.llm import NO_PROVIDER
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


@pytest.mark.parametrize(
    "value, sentence",
    [
        ({"x": [1, 2]}, "variable 'question' must be text, a number or true/false, not an object"),
        (None, "variable 'question' must be text, a number or true/false, not null"),
        (["a"], "variable 'question' must be text, a number or true/false, not a list"),
    ],
)
def test_a_variable_that_is_not_text_is_a_400_naming_it(client, secret, fake_llm, versions, value, sentence):
    body = {"variables": {"question": value}}
    response = post(client, "/api/v1/prompts/support-answer/run", body, secret)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_variables" and sentence in error["message"]
    assert fake_llm.requests == []


def test_numbers_and_booleans_are_sent_as_json_writes_them(client, secret, fake_llm, versions):
    for value, text in ((3, "3"), (2.5, "2.5"), (True, "true")):
        response = post(client, "/api/v1/prompts/support-answer/run", {"variables": {"question": value}}, secret)
        assert response.status_code == 200 and response.json()["output"] == f"echo: Old: {text}"


@pytest.mark.parametrize(
    "config, sentence",
    [
        ({"seed": 1e300}, "'seed' must be a whole number from -9,223,372,036,854,775,808 to"),
        ({"seed": 1.5}, "'seed' must be a whole number"),
        ({"seed": True}, "'seed' must be a whole number"),
        ({"temperature": 2.5}, "'temperature' must be a number from 0 to 2, not 2.5"),
        ({"temperature": "hot"}, "'temperature' must be a number"),
        ({"top_p": -0.1}, "'top_p' must be a number from 0 to 1"),
        ({"max_tokens": 0}, "'max_tokens' must be a whole number from 1 to 1,000,000"),
        ({"max_tokens": 1_000_001}, "'max_tokens' must be a whole number"),
        ({"presence_penalty": -3}, "'presence_penalty' must be a number from -2 to 2"),
        ({"frequency_penalty": 2.01}, "'frequency_penalty' must be a number from -2 to 2"),
        ({"model": {"x": 1}}, "'model' must be a model name"),
        ({"stop": 5}, "'stop' must be text or a list of text"),
    ],
)
def test_config_overrides_out_of_range_are_a_400(client, secret, fake_llm, versions, config, sentence):
    body = {"variables": {"question": "x"}, "config": config}
    response = post(client, "/api/v1/prompts/support-answer/run", body, secret)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_config" and sentence in error["message"]
    assert fake_llm.requests == []


def test_the_edges_of_the_ranges_are_sent(client, secret, fake_llm, versions):
    config = {"seed": 2**63 - 1, "temperature": 2, "top_p": 0, "max_tokens": 1_000_000, "presence_penalty": -2}
    response = post(
        client, "/api/v1/prompts/support-answer/run", {"variables": {"question": "x"}, "config": config}, secret
    )
    assert response.status_code == 200, response.content
    sent = json.loads(fake_llm.requests[0]["body"])
    assert {k: sent[k] for k in config} == config


def test_no_provider_is_a_503_saying_where_an_admin_sets_it(client, secret, versions, settings):
    settings.LLM_BASE_URL = ""
    response = post(client, "/api/v1/prompts/support-answer/run", {"variables": {"question": "x"}}, secret)
    assert response.status_code == 503
    assert response.json()["error"] == {"code": "provider_not_configured", "message": NO_PROVIDER}
    assert "/experiments/provider/" in NO_PROVIDER


def test_provider_errors_never_show_the_base_urls_credentials_or_query(client, secret, versions, settings):
    settings.LLM_BASE_URL = "http://alice:s3cret@127.0.0.1:9/v1?key=k3y"  # the discard port: nothing listens
    response = post(client, "/api/v1/prompts/support-answer/run", {"variables": {"question": "x"}}, secret)
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert message.startswith("The LLM provider at http://127.0.0.1:9 failed: could not connect (")
    assert "s3cret" not in message and "alice" not in message and "k3y" not in message and "/v1" not in message
