"""POST /api/v1/datasets, POST /api/v1/evaluations, GET /api/v1/evaluations/{id}."""

from __future__ import annotations

import json

from experiments.models import Dataset, EvalRun
from experiments.runner import run_execute


def post(client, path, body, secret):
    return client.post(path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_dataset_then_evaluation_through_the_api(client, api_key_factory, fake_llm, publish):
    _, secret = api_key_factory("read", "write")
    publish(name="geo-answer", body="{{ query }}")
    body = {
        "name": "api-set",
        "scorers": ["exact_match", {"name": "regex", "pattern": "^[A-Z]"}],
        "cases": [
            {"variables": {"query": "[[answer:Paris]]"}, "expected": "Paris", "tags": ["a"]},
            {"variables": {"query": "[[answer:rome]]"}, "expected": "Rome"},
        ],
    }
    response = post(client, "/api/v1/datasets", body, secret)
    assert response.status_code == 201
    dataset = Dataset.objects.get(pk=response.json()["id"])
    assert dataset.active_cases().count() == 2

    response = post(
        client, "/api/v1/evaluations", {"prompt": "geo-answer", "version": 1, "dataset": dataset.pk}, secret
    )
    assert response.status_code == 202
    run_id = response.json()["id"]
    assert response.json()["state"] == "queued" and response.json()["progress"] == {"done": 0, "total": 2}
    run_execute(run_id)

    got = client.get(f"/api/v1/evaluations/{run_id}", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    assert got["state"] == "done" and got["progress"] == {"done": 2, "total": 2} and got["error"] is None
    assert set(got["metrics"]) == {"exact_match", "regex", "quality_score"}
    # "rome" matches "Rome" (exact_match ignores case) but fails the capital-letter regex.
    assert got["metrics"]["exact_match"]["mean"] == 1.0 and got["metrics"]["exact_match"]["n"] == 2
    assert got["metrics"]["regex"]["mean"] == 0.5
    assert got["metrics"]["quality_score"]["mean"] == 0.75 and len(got["metrics"]["quality_score"]["ci"]) == 2


def test_bad_input_is_a_json_400_and_writes_nothing(client, api_key_factory, publish, fake_llm):
    _, secret = api_key_factory("read", "write")
    response = post(
        client,
        "/api/v1/datasets",
        {"name": "x", "scorers": ["exact_match"], "cases": [{"variables": {"q": 1}}, {"expected": "no variables"}]},
        secret,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_cases" and error["rows"] == [
        {"line": 2, "reason": "'variables' must be a non-empty object of variable values"}
    ]
    assert not Dataset.objects.exists()

    publish(name="geo-answer", body="{{ query }} {{ city }}")
    post(
        client,
        "/api/v1/datasets",
        {"name": "x", "scorers": ["exact_match"], "cases": [{"variables": {"query": "a"}}]},
        secret,
    )
    response = post(client, "/api/v1/evaluations", {"prompt": "geo-answer", "version": 1, "dataset": "x"}, secret)
    assert response.status_code == 400 and response.json()["error"]["code"] == "missing_variables"
    assert "case 1 lacks city" in response.json()["error"]["message"]
    assert (
        post(client, "/api/v1/evaluations", {"prompt": "nope", "version": 1, "dataset": "x"}, secret).status_code == 404
    )
    assert client.get("/api/v1/evaluations/999999", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 404
    assert not EvalRun.objects.exists()


def test_scopes(client, api_key_factory):
    _, read = api_key_factory("read")
    response = post(client, "/api/v1/datasets", {"name": "x", "scorers": ["exact_match"]}, read)
    assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope"
    assert client.post("/api/v1/evaluations", "{}", content_type="application/json").status_code == 401
    assert not Dataset.objects.exists()


def put(client, path, body, secret):
    return client.put(path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_setting_the_prompt_dataset_is_an_admin_key_policy_change(client, api_key_factory, publish, dataset):
    from experiments.models import PromptEvalSettings

    v = publish(name="geo/answer-query", body="{{ query }}")
    _, write = api_key_factory("read", "write", "deploy")
    response = put(client, "/api/v1/prompts/geo/answer-query/dataset", {"dataset": dataset.pk}, write)
    assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope"
    assert not PromptEvalSettings.objects.exists()

    key, admin = api_key_factory("admin")
    response = put(client, "/api/v1/prompts/geo/answer-query/dataset", {"dataset": "capitals"}, admin)
    assert response.status_code == 200 and response.json() == {
        "prompt": "geo/answer-query",
        "dataset": {"id": dataset.pk, "name": "capitals"},
    }
    assert PromptEvalSettings.objects.get(prompt=v.prompt).dataset == dataset
    from promptreg.models import PolicyChange

    change = PolicyChange.objects.get()  # in the prompt's audit trail
    assert (change.prompt, change.api_key, change.area, change.after) == (
        v.prompt,
        key,
        "gate_dataset",
        "capitals (alpha 0.05)",
    )

    for body, status, code in [
        ({"dataset": "nope"}, 404, "dataset_not_found"),
        ({}, 400, None),
        ({"dataset": [1]}, 400, None),
    ]:
        response = put(client, "/api/v1/prompts/geo/answer-query/dataset", body, admin)
        assert response.status_code == status and "error" in response.json()
        if code:
            assert response.json()["error"]["code"] == code
    assert put(client, "/api/v1/prompts/no-such-prompt/dataset", {"dataset": dataset.pk}, admin).status_code == 404
    assert PromptEvalSettings.objects.get(prompt=v.prompt).dataset == dataset

    response = put(client, "/api/v1/prompts/geo/answer-query/dataset", {"dataset": None}, admin)
    assert response.status_code == 200 and response.json()["dataset"] is None
    assert PromptEvalSettings.objects.get(prompt=v.prompt).dataset is None
