"""The scope × endpoint matrix: every /api/v1 operation in the OpenAPI document and every Langfuse
route, called with keys of each kind (read, write, deploy, admin, none, garbage, revoked).

A caller without credentials, with a made-up secret or with a revoked key gets a 401; a key without
the operation's scope a 403 (the Langfuse PATCH: a 400, so the SDK does not retry) and nothing
changes; a key with it is let through (whatever the body then earns). A new operation fails here
until it is given its scope in REQUIRED."""

from __future__ import annotations

import pytest

from experiments.models import Case, Dataset, EvalRun, Experiment, SamplingPolicy, Score
from promptreg.models import Label, LabelMove, PolicyChange, Prompt, PromptVersion
from rollout.api_examples import EXAMPLES
from rollout.models import Monitor, WebhookEvent, WebhookSubscription
from tests.security.conftest import KINDS, Api, basic, bearer, credentials

READ, WRITE, DEPLOY, ADMIN = "read", "write", "deploy", "admin"
V1 = "/api/v1"
REQUIRED = {
    ("post", f"{V1}/scores"): WRITE,
    ("post", f"{V1}/experiments"): DEPLOY,
    ("get", f"{V1}/experiments/{{experiment_id}}"): READ,
    ("post", f"{V1}/experiments/{{experiment_id}}/start"): DEPLOY,
    ("post", f"{V1}/experiments/{{experiment_id}}/stop"): DEPLOY,
    ("post", f"{V1}/experiments/{{experiment_id}}/ship"): DEPLOY,
    ("post", f"{V1}/experiments/{{experiment_id}}/conclude"): DEPLOY,
    ("post", f"{V1}/datasets"): WRITE,
    ("get", f"{V1}/datasets/{{ref}}"): READ,
    ("post", f"{V1}/datasets/{{ref}}/cases"): WRITE,
    ("get", f"{V1}/prompts/{{name}}/samples"): READ,
    ("get", f"{V1}/prompts/{{name}}/sampling"): READ,
    ("put", f"{V1}/prompts/{{name}}/sampling"): DEPLOY,
    ("put", f"{V1}/prompts/{{name}}/dataset"): ADMIN,  # a policy change
    ("post", f"{V1}/evaluations"): WRITE,
    ("post", f"{V1}/prompts/{{name}}/run"): WRITE,
    ("get", f"{V1}/evaluations/{{run_id}}"): READ,
    ("post", f"{V1}/evaluations/{{run_id}}/cancel"): WRITE,
    ("put", f"{V1}/prompts/{{name}}/monitor"): DEPLOY,
    ("get", f"{V1}/prompts/{{name}}/monitor"): READ,
    ("get", f"{V1}/prompts"): READ,
    ("post", f"{V1}/prompts/{{name}}/versions"): WRITE,
    ("put", f"{V1}/prompts/{{name}}/versions/{{number}}/tags"): WRITE,
    ("post", f"{V1}/prompts/{{name}}/labels/{{label}}"): DEPLOY,
    ("post", f"{V1}/prompts/{{name}}/rollback"): DEPLOY,
    ("get", f"{V1}/prompts/{{name}}"): READ,
    ("post", f"{V1}/webhooks"): ADMIN,
    ("get", f"{V1}/webhooks"): ADMIN,
    ("delete", f"{V1}/webhooks/{{webhook_id}}"): ADMIN,
    ("post", f"{V1}/webhooks/{{webhook_id}}/test"): ADMIN,
}


def has(kind: str, scope: str) -> bool:
    """The documented scope rules: admin implies every scope, deploy implies read."""
    return kind in (ADMIN, scope) or (scope == READ and kind == DEPLOY)


def world() -> tuple:
    """What any write would change."""
    return (
        PromptVersion.objects.count(),
        list(Label.objects.values_list("name", "version_id")),
        LabelMove.objects.count(),
        list(Experiment.objects.values_list("state", flat=True)),
        Dataset.objects.count(),
        Case.objects.count(),
        list(SamplingPolicy.objects.values_list("rate", "retention_days")),
        EvalRun.objects.count(),
        Score.objects.count(),
        Monitor.objects.count(),
        PolicyChange.objects.count(),
        list(Prompt.objects.values_list("prompt_type", "retired_at")),
        list(WebhookSubscription.objects.values_list("removed_at", flat=True)),
        WebhookEvent.objects.count(),
    )


@pytest.fixture
def story(v1_live):
    """The examples' prompt exists, so an allowed call reaches the handler's own checks."""
    from promptreg.services import label_move, version_publish
    from tests.security.conftest import SERVER

    version_publish(
        name="customer-support-system", kind="text", body="Hi {{ company }}", commit_message="first", actor=SERVER
    )
    label_move(
        name="customer-support-system", label="production", version=1, actor=SERVER, reason="first", override=True
    )


def documented(client) -> set[tuple[str, str]]:
    paths = client.get(f"{V1}/openapi.json").json()["paths"]
    return {(method, path) for path, operations in paths.items() for method in operations}


def test_every_documented_operation_has_a_scope_in_the_matrix(client, db):
    assert documented(client) == set(REQUIRED), "give each new /api/v1 operation its scope in REQUIRED"


# The documented example overrides the verdict (admin only); the matrix asks what the scope allows.
BODIES = {("post", f"{V1}/experiments/{{experiment_id}}/ship"): {"reason": "the verdict says ship"}}


def call(api: Api, method: str, path: str):
    example = EXAMPLES[(method, path)]
    url, query = path, {}
    for name, value in example["params"].items():
        if "{" + name + "}" in url:
            url = url.replace("{" + name + "}", str(value))
        else:
            query[name] = value
    if method == "get":
        return api.get(url, query)
    body = BODIES.get((method, path), example["request"])
    return api.call(method, url, body if body is not None else {})


@pytest.mark.parametrize(("method", "path"), sorted(REQUIRED))
def test_scope_matrix(client, story, method, path):
    scope = REQUIRED[(method, path)]
    for kind in sorted(KINDS, key=lambda k: has(k, scope)):  # refusals first, on an untouched world
        _, secret = credentials(kind)
        before = world()
        response = call(Api(client, bearer(secret)), method, path)
        name = f"{method.upper()} {path} with a {kind} key"
        if kind in ("none", "garbage", "revoked"):
            assert response.status_code == 401, name
            assert response.json()["error"]["code"] in ("missing_key", "invalid_key"), name
        elif not has(kind, scope):
            assert response.status_code == 403, name
            assert response.json()["error"]["code"] == "insufficient_scope", name
        else:
            assert response.status_code not in (401, 403), f"{name}: {response.status_code} {response.content[:200]!r}"
            continue
        assert world() == before, f"{name} changed something"


LANGFUSE = [
    # (method, path, body, scope, status when the scope is missing)
    ("get", "/api/public/v2/prompts", None, READ, 403),
    ("get", "/api/public/v2/prompts/support-system", None, READ, 403),
    ("post", "/api/public/v2/prompts", {"name": "support-system", "prompt": "Hi {{ name }}"}, WRITE, 403),
    ("patch", "/api/public/v2/prompts/support-system/versions/1", {"newLabels": ["staging"]}, DEPLOY, 400),
    ("get", "/api/public/projects", None, None, None),
]


@pytest.mark.parametrize(("method", "path", "body", "scope", "refused"), LANGFUSE)
def test_langfuse_scope_matrix(client, v1_live, method, path, body, scope, refused):
    for kind in sorted(KINDS, key=lambda k: scope is None or has(k, scope)):
        key, secret = credentials(kind)
        headers = basic(key.public_id if key else "pk-pr-unknown", secret) if secret else {}
        before = world()
        response = Api(client, headers).call(method, path, body) if method != "get" else client.get(path, **headers)
        name = f"{method.upper()} {path} with a {kind} key"
        if kind in ("none", "garbage", "revoked"):
            assert response.status_code == 401 and response.json()["error"] == "UnauthorizedError", name
        elif scope is not None and not has(kind, scope):
            assert response.status_code == refused and response.json()["error"] == "AccessDeniedError", name
        else:
            assert response.status_code in (200, 201), f"{name}: {response.status_code} {response.content[:200]!r}"
            continue
        assert world() == before, f"{name} changed something"
