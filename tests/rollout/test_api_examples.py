"""The OpenAPI examples are complete and true: every /api/v1 operation has them, they fit the
document's schemas, and run in order against a fresh database they get the documented answers."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from promptreg.models import PRODUCTION, ApiKey, Label, ReviewPolicy
from promptreg.services import label_move
from rollout.api_examples import EXAMPLES
from rollout.models import WebhookEvent, WebhookSubscription
from tests.experiments.conftest import fake_llm  # noqa: F401  (the fake provider fixture)

# The story the examples tell, in order; created ids flow into later steps.
STORY = [
    ("post", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks"),
    ("post", "/api/v1/webhooks/{webhook_id}/test"),
    ("post", "/api/v1/prompts/{name}/versions"),
    ("post", "/api/v1/prompts/{name}/labels/{label}"),
    ("get", "/api/v1/prompts/{name}"),
    ("post", "/api/v1/prompts/{name}/run"),
    ("put", "/api/v1/prompts/{name}/versions/{number}/tags"),
    ("get", "/api/v1/prompts"),
    ("post", "/api/v1/scores"),
    ("get", "/api/v1/prompts/{name}/samples"),
    ("put", "/api/v1/prompts/{name}/sampling"),
    ("get", "/api/v1/prompts/{name}/sampling"),
    ("post", "/api/v1/prompts/{name}/rollback"),
    ("put", "/api/v1/prompts/{name}/monitor"),
    ("get", "/api/v1/prompts/{name}/monitor"),
    ("post", "/api/v1/datasets"),
    ("get", "/api/v1/datasets/{ref}"),
    ("post", "/api/v1/datasets/{ref}/cases"),
    ("put", "/api/v1/prompts/{name}/dataset"),
    ("post", "/api/v1/evaluations"),
    ("get", "/api/v1/evaluations/{run_id}"),
    ("post", "/api/v1/evaluations/{run_id}/cancel"),
    ("post", "/api/v1/experiments"),
    ("post", "/api/v1/experiments/{experiment_id}/start"),
    ("get", "/api/v1/experiments/{experiment_id}"),
    ("post", "/api/v1/experiments/{experiment_id}/stop"),
    ("post", "/api/v1/experiments/{experiment_id}/conclude"),
    ("post", "/api/v1/experiments"),
    ("post", "/api/v1/experiments/{experiment_id}/start"),
    ("post", "/api/v1/experiments/{experiment_id}/ship"),
    ("delete", "/api/v1/webhooks/{webhook_id}"),
]
CREATED_IDS = {
    "/api/v1/evaluations": "run_id",
    "/api/v1/experiments": "experiment_id",
    "/api/v1/webhooks": "webhook_id",
}


@pytest.fixture
def document(client, db) -> dict[str, Any]:
    return client.get("/api/v1/openapi.json").json()


def operations(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def check(instance: Any, schema: dict, document: dict, what: str) -> None:
    # OpenAPI 3.1 schemas are JSON Schema 2020-12; refs point into the document's components.
    validator = jsonschema.Draft202012Validator({**schema, "components": document["components"]})
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, f"{what}: " + "; ".join(errors)


def test_every_operation_has_examples(document):
    documented = {(method, path) for method, path, _ in operations(document)}
    missing = sorted(documented - EXAMPLES.keys())
    assert not missing, f"add examples for {missing} in rollout/api_examples.py (and a step in STORY here)"
    assert not EXAMPLES.keys() - documented, "examples for operations that no longer exist"
    assert set(STORY) == documented
    for method, path, operation in operations(document):
        name = f"{method.upper()} {path}"
        answer = operation["responses"].get(str(EXAMPLES[(method, path)]["status"]))
        assert answer, f"{name} does not declare the status it answers"
        assert "example" in answer["content"]["application/json"], name
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            schema = body["schema"]
            if "$ref" in schema:
                schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
            assert "example" in body or "examples" in schema, name
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert "example" in parameter, f"{name}: path parameter {parameter['name']}"


def test_examples_fit_the_schemas(document):
    for method, path, operation in operations(document):
        example = EXAMPLES[(method, path)]
        name = f"{method.upper()} {path}"
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None and example["request"] is not None:
            check(example["request"], body["schema"], document, f"{name} request example")
        answer = operation["responses"][str(example["status"])]["content"]["application/json"]
        check(answer["example"], answer["schema"], document, f"{name} response example")


def test_examples_run_as_a_story_and_get_the_documented_answers(client, document, publish, cli, settings, fake_llm):
    settings.LLM_MODEL = "example-model"  # the fake answers the playground run; evaluation runs are only queued here
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    publish(
        "customer-support-system", "You are the support assistant for {{ company }}.", commit_message="First version"
    )
    label_move(name="customer-support-system", label=PRODUCTION, version=1, actor=cli, reason="first release")
    _, secret = ApiKey.issue(name="deploy-pipeline", scopes=["admin"])
    created: dict[str, int] = {}
    for method, path in STORY:
        example = EXAMPLES[(method, path)]
        url, query = path, {}
        for key, value in example["params"].items():
            value = created.get(key, value)
            if "{" + key + "}" in url:
                url = url.replace("{" + key + "}", str(value))
            else:
                query[key] = value
        if method == "get":
            response = client.get(url, query, HTTP_AUTHORIZATION=f"Bearer {secret}")
        else:
            data = "" if example["request"] is None else json.dumps(example["request"])
            response = client.generic(
                method.upper(), url, data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
            )
        name = f"{method.upper()} {path}"
        assert response.status_code == example["status"], f"{name}: {response.content[:300]!r}"
        declared = document["paths"][path][method]["responses"][str(example["status"])]["content"]["application/json"]
        check(response.json(), declared["schema"], document, f"{name} response")
        assert response.json().keys() == example["response"].keys(), (
            f"{name}: the example's fields differ from the answer's"
        )
        if method == "post" and path in CREATED_IDS:
            created[CREATED_IDS[path]] = response.json()["id"]
    # The story ends with the treatment shipped to production; the webhook heard it all before it was removed.
    assert Label.objects.get(prompt__name="customer-support-system", name=PRODUCTION).version.number == 2
    assert set(WebhookEvent.objects.values_list("event", flat=True)) == {
        "webhook.test",
        "version.created",
        "label.moved",
    }
    assert not WebhookSubscription.objects.active().exists()
