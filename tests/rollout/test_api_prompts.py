"""`/api/v1/prompts/…`: fetch, publish, label moves, rollback, and every error path as JSON."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from promptreg.models import PRODUCTION, Label, LabelMove, MoveVia, Prompt, PromptVersion
from promptreg.services import label_move, prompt_retire
from tests.rollout.conftest import ApiClient

NAME = "support-system"
URL = f"/api/v1/prompts/{NAME}"


def error_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return body["error"]


def live(name: str = NAME) -> int:
    return Label.objects.get(prompt__name=name, name=PRODUCTION).version.number


@pytest.fixture
def shipped(publish, cli, ungated, django_capture_on_commit_callbacks):
    """support-system v1 and v2 ({{ name }}), production → v2."""
    with django_capture_on_commit_callbacks(execute=True):
        publish(config={"temperature": 0.2})
        publish(body="Hi {{ name }}, from {{ company }}")
        label_move(name=NAME, label=PRODUCTION, version=2, actor=cli, reason="ship")


# --- Fetch --------------------------------------------------------------------------


def test_fetch_returns_the_production_version_in_the_contract_shape(api_as, shipped):
    response = api_as("read").get(URL)
    assert response.status_code == 200
    body = response.json()
    assert {
        k: body[k] for k in ("name", "version", "label", "type", "prompt", "config", "variables", "experiment")
    } == {
        "name": NAME,
        "version": 2,
        "label": "production",
        "type": "text",
        "prompt": "Hi {{ name }}, from {{ company }}",
        "config": {},
        "variables": ["name", "company"],
        "experiment": None,
    }
    assert body["labels"] == ["production"]
    assert response["ETag"].startswith('"')


def test_fetch_by_version_and_by_latest(api_as, shipped, publish, django_capture_on_commit_callbacks):
    client = api_as("read")
    v1 = client.get(URL, {"version": 1}).json()
    assert (v1["version"], v1["label"], v1["config"]) == (1, None, {"temperature": 0.2})
    with django_capture_on_commit_callbacks(execute=True):
        publish(body="v3 {{ name }}")
    assert client.get(URL, {"label": "latest"}).json()["version"] == 3
    assert client.get(URL).json()["version"] == 2


def test_fetch_a_chat_prompt_in_a_folder(api_as, publish, cli, ungated):
    messages = [{"role": "system", "content": "You help {{ who }}."}, {"type": "placeholder", "name": "history"}]
    publish(name="billing/refund-extraction", kind="chat", body=messages)
    label_move(name="billing/refund-extraction", label="staging", version=1, actor=cli, reason="try")
    response = api_as("read").get("/api/v1/prompts/billing/refund-extraction", {"label": "staging"})
    assert response.status_code == 200
    assert response.json()["prompt"] == messages
    assert response.json()["variables"] == ["who", "history"]


def test_etag_and_if_none_match_give_304_until_the_label_moves(
    api_as, shipped, cli, django_capture_on_commit_callbacks
):
    client = api_as("read")
    etag = client.get(URL)["ETag"]
    not_modified = client.get(URL, HTTP_IF_NONE_MATCH=etag)
    assert (not_modified.status_code, not_modified.content, not_modified["ETag"]) == (304, b"", etag)
    with django_capture_on_commit_callbacks(execute=True):
        label_move(name=NAME, label=PRODUCTION, version=1, actor=cli, reason="back")
    changed = client.get(URL, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed.json()["version"] == 1 and changed["ETag"] != etag


def test_a_retired_prompt_answers_410(api_as, shipped, cli, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        prompt_retire(name=NAME, actor=cli, reason="replaced")
    response = api_as("read").get(URL)
    assert response.status_code == 410
    assert error_of(response)["code"] == "prompt_retired"


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/api/v1/prompts/nobody-system", {}, 404, "prompt_not_found"),
        (URL, {"version": 9}, 404, "version_not_found"),
        (URL, {"label": "canary"}, 404, "label_not_found"),
        (URL, {"version": "two"}, 400, "invalid"),
        (URL, {"version": 0}, 400, "invalid"),
        (URL, {"version": 1, "label": "production"}, 400, "label_and_version"),
        (URL, {"label": "Not A Label"}, 400, "invalid_label"),
        ("/api/v1/prompts/Upper_Case", {}, 404, "not_found"),
        ("/api/v1/nowhere", {}, 404, "not_found"),
    ],
)
def test_fetch_errors_are_json(api_as, shipped, path, params, status, code):
    response = api_as("read").get(path, params)
    assert response.status_code == status
    assert error_of(response)["code"] == code


def test_missing_invalid_and_insufficient_keys(api_as, shipped):
    assert error_of(ApiClient(None).get(URL))["code"] == "missing_key"
    for header in ("Basic abc", "Bearer", "Bearer sk-pr-not-a-key"):
        response = ApiClient(None).get(URL, HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header
        error_of(response)
    write_only = api_as("write").get(URL)
    assert (write_only.status_code, error_of(write_only)["code"]) == (403, "insufficient_scope")


def test_a_revoked_key_stops_working_at_once(api_key_factory, shipped, django_capture_on_commit_callbacks):
    key, secret = api_key_factory("read")
    client = ApiClient(secret)
    assert client.get(URL).status_code == 200  # its verdict is now cached
    with django_capture_on_commit_callbacks(execute=True):
        key.revoked_at = timezone.now()
        key.save()
    revoked = client.get(URL)
    assert (revoked.status_code, error_of(revoked)["code"]) == (401, "invalid_key")


def test_methods_a_path_does_not_take_answer_json_405(api_as, shipped):
    response = api_as("read").put(URL)
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert response["Allow"] == "GET"


# --- Publish ---------------------------------------------------------------------------


def test_publish_creates_the_prompt_and_numbers_versions(api_as, db):
    client = api_as("write")
    first = client.post_json(
        "/api/v1/prompts/checkout/summary-system/versions",
        {
            "type": "text",
            "prompt": "Summarise {{ cart }}",
            "config": {"model": "m"},
            "commit_message": "first",
            "prompt_type": "extraction",
        },
    )
    assert first.status_code == 201, first.content
    assert (first.json()["name"], first.json()["version"], first.json()["variables"]) == (
        "checkout/summary-system",
        1,
        ["cart"],
    )
    second = client.post_json(
        "/api/v1/prompts/checkout/summary-system/versions",
        {
            "type": "chat",
            "prompt": [{"role": "system", "content": "Hi"}],
            "commit_message": "chat",
        },
    )
    assert (second.status_code, second.json()["version"], second.json()["type"]) == (201, 2, "chat")
    prompt = Prompt.objects.get(name="checkout/summary-system")
    assert prompt.prompt_type == "extraction"
    assert list(prompt.versions.values_list("number", "created_by_key__name")) == [(2, "write"), (1, "write")]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"prompt": "x"}, "invalid"),  # no commit message
        ({"prompt": 5, "commit_message": "m"}, "invalid"),
        ({"prompt": "x", "commit_message": "m", "config": [1]}, "invalid"),
        ({"prompt": "x", "commit_message": "m", "type": "html"}, "invalid"),
        ({"prompt": "Hi {{ a.b }}", "commit_message": "m"}, "invalid_template"),
        ({"prompt": "x", "commit_message": "   "}, "missing_field"),
        ({"prompt": "x", "commit_message": "m", "prompt_type": "poem"}, "invalid"),
        ({"type": "chat", "prompt": "not a list", "commit_message": "m"}, "invalid_template"),
    ],
)
def test_publish_rejects_bad_input_and_saves_nothing(api_as, db, body, code):
    response = api_as("write").post_json(URL + "/versions", body)
    assert response.status_code == 400
    assert error_of(response)["code"] == code
    assert not PromptVersion.objects.exists()


def test_bad_json_and_wrong_body_shapes_are_400(api_as, db):
    client = api_as("write")
    for raw in ("{not json", "[1, 2]", '"text"', "null"):
        response = client.post(URL + "/versions", raw, content_type="application/json")
        assert response.status_code == 400, raw
        error_of(response)
    assert error_of(client.post(URL + "/versions", "{", content_type="application/json"))["code"] == "invalid_json"
    assert not Prompt.objects.exists()


def test_a_2mb_body_is_refused_with_413(api_as, db):
    body = json.dumps({"prompt": "x" * (2 * 1024 * 1024), "commit_message": "big"})
    response = api_as("write").post(URL + "/versions", body, content_type="application/json")
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    assert not Prompt.objects.exists()


def test_publish_needs_the_write_scope(api_as, db):
    response = api_as("read", "deploy").post_json(URL + "/versions", {"prompt": "x", "commit_message": "m"})
    assert (response.status_code, error_of(response)["code"]) == (403, "insufficient_scope")
    assert not Prompt.objects.exists()


# --- Labels ------------------------------------------------------------------------------


def test_label_move_enforces_gates_and_names_the_missing_one(api_as, publish):
    publish()
    response = api_as("deploy").post_json(URL + "/labels/production", {"version": 1, "reason": "ship"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "gate_blocked" and "peer review" in error["message"]
    assert error["missing"] and "peer review" in error["missing"][0]
    assert not Label.objects.exists() and not LabelMove.objects.exists()


def test_override_needs_an_admin_key_and_is_recorded(api_as, publish):
    publish()
    refused = api_as("deploy").post_json(
        URL + "/labels/production", {"version": 1, "reason": "hotfix", "override": True}
    )
    assert (refused.status_code, error_of(refused)["code"]) == (403, "forbidden")
    assert not Label.objects.exists()
    response = api_as("admin").post_json(
        URL + "/labels/production", {"version": 1, "reason": "hotfix", "override": True}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["version"], body["previous_version"], body["is_override"], body["via"]) == (1, None, True, "api")
    move = LabelMove.objects.get()
    assert move.is_override and move.bypassed_gates and move.reason == "hotfix" and move.api_key.name == "admin"
    assert live() == 1


def test_ungated_labels_move_and_bad_moves_are_refused(api_as, publish):
    publish(), publish()
    client = api_as("deploy")
    moved = client.post_json(URL + "/labels/staging", {"version": 2, "reason": "try"})
    assert (moved.status_code, moved.json()["label"], moved.json()["version"]) == (200, "staging", 2)
    cases = [
        (URL + "/labels/staging", {"version": 2, "reason": "again"}, 400, "no_change"),
        (URL + "/labels/staging", {"version": 7, "reason": "x"}, 404, "version_not_found"),
        (URL + "/labels/staging", {"version": 1, "reason": ""}, 400, "missing_field"),
        (URL + "/labels/staging", {"version": "one", "reason": "x"}, 400, "invalid"),
        (URL + "/labels/staging", {"reason": "x"}, 400, "invalid"),
        (URL + "/labels/latest", {"version": 1, "reason": "x"}, 400, "invalid_label"),
        ("/api/v1/prompts/nobody-system/labels/staging", {"version": 1, "reason": "x"}, 404, "prompt_not_found"),
    ]
    for path, body, status, code in cases:
        response = client.post_json(path, body)
        assert (response.status_code, error_of(response)["code"]) == (status, code), (path, body)
    assert LabelMove.objects.count() == 1
    assert api_as("read").post_json(URL + "/labels/staging", {"version": 1, "reason": "x"}).status_code == 403


# --- Rollback -----------------------------------------------------------------------------


def test_rollback_through_the_api_walks_back_then_refuses(
    api_as, publish, cli, ungated, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        for n in (1, 2, 3):
            publish()
            label_move(name=NAME, label=PRODUCTION, version=n, actor=cli, reason=f"ship v{n}")
    deploy, reader = api_as("deploy"), api_as("read")
    assert reader.get(URL).json()["version"] == 3
    for expected in (2, 1):
        with django_capture_on_commit_callbacks(execute=True):
            response = deploy.post_json(URL + "/rollback", {"reason": "quality dropped"})
        assert response.status_code == 200, response.content
        assert (response.json()["version"], response.json()["is_rollback"]) == (expected, True)
        assert live() == expected
        assert reader.get(URL).json()["version"] == expected
    refused = deploy.post_json(URL + "/rollback", {"reason": "again"})
    assert (refused.status_code, error_of(refused)["code"]) == (400, "nothing_to_roll_back")
    assert live() == 1
    assert list(LabelMove.objects.filter(is_rollback=True).values_list("via", flat=True)) == [MoveVia.API, MoveVia.API]


def test_rollback_errors(api_as, publish):
    publish()
    deploy = api_as("deploy")
    nothing = deploy.post_json(URL + "/rollback", {"reason": "x"})
    assert (nothing.status_code, error_of(nothing)["code"]) == (400, "nothing_to_roll_back")
    assert deploy.post_json(URL + "/rollback", {}).status_code == 400
    assert (
        error_of(deploy.post_json("/api/v1/prompts/nobody-system/rollback", {"reason": "x"}))["code"]
        == "prompt_not_found"
    )
    assert api_as("read", "write").post_json(URL + "/rollback", {"reason": "x"}).status_code == 403
    assert not LabelMove.objects.exists()


def test_openapi_document_describes_every_status_the_endpoints_return(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    fetch = paths["/api/v1/prompts/{name}"]["get"]["responses"]
    assert {"200", "304", "400", "401", "403", "404", "410"} <= set(fetch)
    assert {"201", "400", "401", "403", "413"} <= set(paths["/api/v1/prompts/{name}/versions"]["post"]["responses"])
    assert {"200", "400", "403", "404", "409"} <= set(paths["/api/v1/prompts/{name}/rollback"]["post"]["responses"])


def test_the_documented_operation_answers_like_the_fast_view(api_as, publish, cli, ungated):
    """A prompt literally named 'versions' is routed to the API's own GET operation, which
    must answer exactly like the fast fetch view every other name goes to."""
    publish(name="versions"), publish(name="other-system")
    for name in ("versions", "other-system"):
        label_move(name=name, label=PRODUCTION, version=1, actor=cli, reason="ship")
    client = api_as("read")
    via_api, via_view = client.get("/api/v1/prompts/versions"), client.get("/api/v1/prompts/other-system")
    assert (via_api.status_code, via_view.status_code) == (200, 200)
    assert set(via_api.json()) == set(via_view.json())
    assert via_api.json()["name"] == "versions"
    assert error_of(client.get("/api/v1/prompts/versions", {"label": "nope"}))["code"] == "label_not_found"
    assert error_of(ApiClient(None).get("/api/v1/prompts/versions"))["code"] == "missing_key"


def test_overlong_session_ids_are_refused(api_as, shipped):
    client = api_as("read")
    assert client.get(URL, {"session_id": "s" * 256}).status_code == 200
    response = client.get(URL, {"session_id": "s" * 257})
    assert (response.status_code, error_of(response)["code"]) == (400, "invalid")
