"""Composition at the fetch: the resolved text and its dependencies, dependents invalidated when an included prompt's
label moves (the next fetch shows the old text after a rollback), and the label-move API stating the impact.
With REDIS_URL set these run through the real Redis cache and this process's local layer."""

from __future__ import annotations

import pytest

from promptreg.exceptions import InvalidInput
from promptreg.models import PRODUCTION, Label, MoveVia, Prompt, PromptVersion
from promptreg.services import Actor, label_move, prompt_retire, rollback
from tests.rollout.conftest import ApiClient

VOICE = "company-voice"
URL = "/api/v1/prompts/support-system"
INCLUDE = f"@@@langfusePrompt:name={VOICE}|label=production@@@"


@pytest.fixture
def reader(api_key_factory):
    return ApiClient(api_key_factory("read")[1])


@pytest.fixture
def composed(publish, cli, ungated, django_capture_on_commit_callbacks):
    """support-system (production v1) includes company-voice at production (v1, then v2)."""
    with django_capture_on_commit_callbacks(execute=True):
        publish(VOICE, "Be brief.")
        publish(VOICE, "Be warm, {{ customer }}.")
        label_move(name=VOICE, label=PRODUCTION, version=1, actor=cli, reason="v1")
        label_move(name=VOICE, label=PRODUCTION, version=2, actor=cli, reason="v2")
        publish("support-system", f"Answer {{{{ question }}}}. {INCLUDE}")
        label_move(name="support-system", label=PRODUCTION, version=1, actor=cli, reason="live")


def test_the_fetch_serves_the_resolved_text_and_lists_its_dependencies(reader, composed):
    body = reader.get(URL).json()
    assert body["prompt"] == "Answer {{ question }}. Be warm, {{ customer }}."
    assert body["variables"] == ["question", "customer"]
    assert body["dependencies"] == [{"name": VOICE, "version": 2, "label": "production"}]
    assert reader.get(f"/api/v1/prompts/{VOICE}").json()["dependencies"] == []


def test_a_rollback_of_the_included_prompt_is_served_by_the_dependent_on_its_next_fetch(
    reader, composed, cli, django_capture_on_commit_callbacks
):
    first = reader.get(URL)
    assert reader.get(URL)["ETag"] == first["ETag"]  # warm: from the cache
    with django_capture_on_commit_callbacks(execute=True):
        rollback(name=VOICE, actor=cli, reason="too warm")
    after = reader.get(URL, HTTP_IF_NONE_MATCH=first["ETag"])
    assert after.status_code == 200
    assert after.json()["prompt"] == "Answer {{ question }}. Be brief."
    assert after.json()["dependencies"] == [{"name": VOICE, "version": 1, "label": "production"}]


def test_a_dependent_two_levels_up_is_invalidated_too(
    reader, composed, publish, cli, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        publish("faq-system", "FAQ: @@@langfusePrompt:name=support-system|label=production@@@")
        label_move(name="faq-system", label=PRODUCTION, version=1, actor=cli, reason="live")
    assert reader.get("/api/v1/prompts/faq-system").json()["prompt"].endswith("Be warm, {{ customer }}.")
    with django_capture_on_commit_callbacks(execute=True):
        rollback(name=VOICE, actor=cli, reason="too warm")
    body = reader.get("/api/v1/prompts/faq-system").json()
    assert body["prompt"] == "FAQ: Answer {{ question }}. Be brief."
    assert [d["name"] for d in body["dependencies"]] == ["support-system", VOICE]


def test_a_fetch_whose_include_does_not_resolve_is_a_clear_409(reader, db):
    # Only data from before composition can hold such a tag: publish and label moves refuse it.
    legacy = Prompt.objects.create(name="legacy-system")
    version = PromptVersion.objects.create(
        prompt=legacy, number=1, body="@@@langfusePrompt:name=gone|label=production@@@", commit_message="old"
    )
    Label.objects.create(prompt=legacy, name=PRODUCTION, version=version)
    response = reader.get("/api/v1/prompts/legacy-system")
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "dependency_unresolved",
        "message": "'legacy-system' cannot be served: @@@langfusePrompt:name=gone|label=production@@@: there is no "
        "prompt named 'gone'.",
    }


def test_retiring_a_prompt_others_serve_is_refused(composed, cli):
    with pytest.raises(InvalidInput, match=r"'company-voice' is included by support-system v1 \(production, latest\)"):
        prompt_retire(name=VOICE, actor=cli, reason="gone")
    assert not Prompt.objects.get(name=VOICE).is_retired


def test_publishing_through_the_api_refuses_a_missing_reference(api_as):
    writer = api_as("write")
    response = writer.post_json(
        "/api/v1/prompts/support-system/versions",
        {"prompt": "@@@langfusePrompt:name=nowhere|label=production@@@", "commit_message": "x"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_reference"
    assert "there is no prompt named 'nowhere'" in response.json()["error"]["message"]


def test_the_label_move_api_states_the_impact(api_as, composed):
    deployer = api_as("deploy")
    response = deployer.post_json(f"/api/v1/prompts/{VOICE}/labels/production", {"version": 1, "reason": "calmer"})
    assert response.status_code == 200
    body = response.json()
    assert body["impact"] == "1 prompt includes this at production: support-system (production v1, gated; latest v1)."
    assert body["dependents"][0] == {"name": "support-system", "label": PRODUCTION, "version": 1, "gated": True}
    rolled = deployer.post_json(f"/api/v1/prompts/{VOICE}/rollback", {"reason": "back"}).json()
    assert rolled["impact"].startswith("1 prompt includes this at production")


def test_a_subscription_to_a_dependent_hears_of_its_includes_label_moves(composed, cli):
    from rollout import webhooks
    from rollout.models import WebhookDelivery, WebhookEvent

    actor = cli
    hears = webhooks.webhook_subscribe(
        url="http://127.0.0.1:9/hooks", events=["label.moved"], prompts=["support-system"], secret="s" * 20, actor=actor
    )
    webhooks.webhook_subscribe(
        url="http://127.0.0.1:9/other", events=["label.moved"], prompts=["other-system"], secret="s" * 20, actor=actor
    )
    rollback(name=VOICE, actor=cli, reason="too warm")
    event = WebhookEvent.objects.get(event="label.moved")
    assert event.prompt == VOICE
    assert event.data["dependents"][0]["name"] == "support-system"
    assert [d.subscription for d in WebhookDelivery.objects.filter(event=event)] == [hears]


def approved(version, author, reviewer):
    from promptreg.services import Actor, review_submit, version_submit_for_review

    version_submit_for_review(version=version, actor=Actor(via=MoveVia.BUTTON, user=author))
    review_submit(version=version, actor=Actor(via=MoveVia.BUTTON, user=reviewer), decision="approve")
    return version


def test_a_gated_move_refuses_text_an_ungated_include_points_at_unreviewed(
    api_as, publish, author, reviewer, admin_user
):
    """inc@qa2 (ungated) moves to an unreviewed version before comp-d, approved while qa2 showed reviewed text, goes
    to production: the move names the include's missing gates, and serves nothing new unless an admin overrides."""
    as_author = Actor(via=MoveVia.BUTTON, user=author)
    approved(publish("inc", "INC1 safe", actor=as_author), author, reviewer)
    publish("inc", "INC2", actor=as_author)
    publish("inc", "INC3 EVIL unreviewed", actor=as_author)
    deployer = api_as("deploy")
    assert deployer.post_json("/api/v1/prompts/inc/labels/qa2", {"version": 1, "reason": "qa"}).status_code == 200
    comp = publish("comp-d", "D4: @@@langfusePrompt:name=inc|label=qa2@@@", actor=as_author)
    approved(comp, author, reviewer)
    assert deployer.post_json("/api/v1/prompts/inc/labels/qa2", {"version": 3, "reason": "qa"}).status_code == 200

    response = deployer.post_json("/api/v1/prompts/comp-d/labels/production", {"version": 1, "reason": "ship"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "gate_blocked"
    assert error["missing"] == [
        "includes: inc@qa2 (v3): peer review: needs 1 approval from someone other than the author (0 so far)"
    ]
    assert not Label.objects.filter(prompt__name="comp-d").exists()
    move = label_move(
        name="comp-d",
        label=PRODUCTION,
        version=1,
        actor=Actor(via=MoveVia.BUTTON, user=admin_user),
        reason="hotfix",
        override=True,
    )
    assert move.bypassed_gates == error["missing"]
    # Now that a gated label serves qa2, its moves take inc's gates, as before.
    assert deployer.post_json("/api/v1/prompts/inc/labels/qa2", {"version": 2, "reason": "qa"}).status_code == 400
    assert deployer.post_json("/api/v1/prompts/inc/labels/qa2", {"version": 1, "reason": "qa"}).status_code == 200


def test_a_rollback_to_a_version_that_would_cycle_is_refused(publish, cli, ungated, api_as):
    publish("cyc-y", "plain y")
    label_move(name="cyc-y", label="staging", version=1, actor=cli, reason="stage")
    publish("cyc-x", "plain x")
    publish("cyc-x", "X2 @@@langfusePrompt:name=cyc-y|label=staging@@@")
    label_move(name="cyc-x", label=PRODUCTION, version=2, actor=cli, reason="v2")
    publish("cyc-x", "plain x3")
    label_move(name="cyc-x", label=PRODUCTION, version=3, actor=cli, reason="v3")
    publish("cyc-y", "Y2 @@@langfusePrompt:name=cyc-x|label=production@@@")
    label_move(name="cyc-y", label="staging", version=2, actor=cli, reason="no cycle while cyc-x is plain")

    response = api_as("deploy").post_json("/api/v1/prompts/cyc-x/rollback", {"reason": "back", "expected_current": 3})

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "dependency_unresolved"
    assert error["message"].startswith(
        "Rolling back production of 'cyc-x' to v2 would leave it unservable: "
        "@@@langfusePrompt:name=cyc-x|label=production@@@: a prompt cannot include itself (cyc-x → cyc-y → cyc-x)."
    )
    assert "Nothing was rolled back" in error["message"]
    assert Label.objects.get(prompt__name="cyc-x", name=PRODUCTION).version.number == 3
    assert api_as("read").get("/api/v1/prompts/cyc-x").status_code == 200


def test_a_rollback_to_a_version_including_a_retired_prompt_is_refused(publish, cli, ungated, api_as):
    publish("ret-r", "R1")
    label_move(name="ret-r", label=PRODUCTION, version=1, actor=cli, reason="live")
    publish("ret-p", "P1 @@@langfusePrompt:name=ret-r|label=production@@@")
    label_move(name="ret-p", label=PRODUCTION, version=1, actor=cli, reason="live")
    publish("ret-p", "P2 plain")
    label_move(name="ret-p", label=PRODUCTION, version=2, actor=cli, reason="plain")
    prompt_retire(name="ret-r", actor=cli, reason="nothing serves it")

    response = api_as("deploy").post_json("/api/v1/prompts/ret-p/rollback", {"reason": "back"})

    assert response.status_code == 409
    assert "'ret-r' is retired" in response.json()["error"]["message"]
    assert api_as("read").get("/api/v1/prompts/ret-p").json()["prompt"] == "P2 plain"
