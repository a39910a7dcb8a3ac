"""One test per side door of issue 11 (1–9, 12, 18): each walks through the door and is refused, and
each allowed path leaves the record a reviewer expects. Numbers refer to the issue's list."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command

from experiments.datasets import validate_cases
from experiments.eval_datasets import (
    case_remove,
    case_save,
    dataset_create,
    dataset_import,
    dataset_update,
    prompt_set_dataset,
)
from experiments.models import CONTROL, TREATMENT, AnalysisSnapshot, Experiment, ExperimentAction, ExperimentEvent
from promptreg.exceptions import Forbidden
from promptreg.models import (
    PRODUCTION,
    ApiKey,
    Label,
    LabelMove,
    MoveVia,
    PolicyArea,
    PolicyChange,
    Prompt,
    PromptVersion,
    ReviewDecision,
    ReviewPolicy,
)
from promptreg.services import Actor, review_policy_update, review_submit, version_submit_for_review
from rollout.models import Alert, AlertChannel, AlertDelivery, AlertKind
from rollout.tasks import deliver_alert
from tests.security.conftest import NAME, SERVER, Api, basic, bearer, issue

EXPERIMENT = {
    "prompt": NAME,
    "control_version": 1,
    "treatment_version": 2,
    "primary_metric": "quality_score",
    "min_samples_per_variant": 20,
    "guardrails": [{"metric": "latency_ms", "direction": "lower_is_better", "margin": 50}],
}


def sessions(experiment, variant, k):
    return [s for s in (f"s{i}" for i in range(20_000)) if experiment.assign(s) == variant][:k]


def post_scores(
    api: Api, experiment, per_variant: dict[str, int], quality: dict[str, float], latency: dict[str, float]
):
    """What app servers post (with a write key) for sessions of each variant."""
    writer = Api(api.client, bearer(issue("write", name="app-server")[1]))
    scores = []
    for variant, version in ((CONTROL, 1), (TREATMENT, 2)):
        for i, s in enumerate(sessions(experiment, variant, per_variant[variant])):
            metrics = {"quality_score": quality[variant] + (i % 7) / 50, "latency_ms": latency[variant] + i % 11}
            scores.append(
                {
                    "id": s,
                    "prompt": NAME,
                    "version": version,
                    "session_id": s,
                    "experiment": experiment.pk,
                    "metrics": metrics,
                }
            )
    assert writer.post("/api/v1/scores", {"scores": scores}).status_code == 200


def started(api: Api, body: dict, on_commit) -> Experiment:
    created = api.post("/api/v1/experiments", body)
    assert created.status_code == 201, created.content
    with on_commit(execute=True):
        r = api.post(f"/api/v1/experiments/{created.json()['id']}/start", {})
    assert r.status_code == 200, r.content
    return Experiment.objects.get(pk=created.json()["id"])


# 1 ------------------------------------------------------------------------------------------------


def test_door_1_an_experiment_cannot_start_an_unreviewed_treatment(
    v1_live, api_for, client, django_capture_on_commit_callbacks
):
    deploy, _ = api_for("deploy")
    created = deploy.post("/api/v1/experiments", {**EXPERIMENT, "traffic_fraction": 0.9999})
    experiment_id = created.json()["id"]
    refused = deploy.post(f"/api/v1/experiments/{experiment_id}/start", {})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "gate_blocked"
    assert any("peer review" in gate for gate in refused.json()["error"]["missing"])
    assert Experiment.objects.get(pk=experiment_id).state == "draft" and not ExperimentEvent.objects.exists()
    served = {deploy.get(f"/api/v1/prompts/{NAME}", {"session_id": f"u{i}"}).json()["version"] for i in range(200)}
    assert served == {1}  # not one of 200 sessions gets the draft
    # A deploy key cannot override; an admin must give a reason, and the override is recorded.
    assert (
        deploy.post(f"/api/v1/experiments/{experiment_id}/start", {"override": True, "reason": "trust me"}).status_code
        == 403
    )
    admin, admin_key = api_for("admin")
    no_reason = admin.post(f"/api/v1/experiments/{experiment_id}/start", {"override": True})
    assert no_reason.status_code == 400 and Experiment.objects.get(pk=experiment_id).state == "draft"
    with django_capture_on_commit_callbacks(execute=True):
        ok = admin.post(
            f"/api/v1/experiments/{experiment_id}/start",
            {"override": True, "reason": "hotfix canary, reviewed on the call"},
        )
    assert ok.status_code == 200 and ok.json()["state"] == "running"
    event = ExperimentEvent.objects.get()
    assert (event.action, event.is_override, event.api_key, event.reason) == (
        ExperimentAction.START,
        True,
        admin_key,
        "hotfix canary, reviewed on the call",
    )
    assert any("peer review" in gate for gate in event.bypassed)


def test_door_1_a_canary_from_the_dashboard_meets_the_same_gates(v1_live, client, deployer):
    from experiments.services import canary_start
    from promptreg.exceptions import GateBlocked

    with pytest.raises(GateBlocked):
        canary_start(actor=Actor(via=MoveVia.BUTTON, user=deployer), prompt=NAME, version=2)
    assert not Experiment.objects.exists()
    client.force_login(deployer)
    draft = Experiment.objects.create(
        prompt=Prompt.objects.get(name=NAME),
        control_version_id=v1_live[0].pk,
        treatment_version_id=v1_live[1].pk,
        traffic_fraction=0.05,
        primary_metric="quality_score",
        kind="canary",
    )
    client.post(f"/experiments/ab/{draft.pk}/start/", {"override": "on", "reason": "a deployer cannot override"})
    assert Experiment.objects.get(pk=draft.pk).state == "draft"


# 2 ------------------------------------------------------------------------------------------------


def test_door_2_experiment_traffic_changes_are_in_the_audit_trail_and_the_timeline(
    v1_live, approve, api_for, client, deployer, django_capture_on_commit_callbacks
):
    approve(v1_live[1])
    deploy, key = api_for("deploy")
    experiment = started(deploy, {**EXPERIMENT, "traffic_fraction": 0.2}, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        assert deploy.post(f"/api/v1/experiments/{experiment.pk}/stop", {"reason": "latency alarm"}).status_code == 200
        assert deploy.post(f"/api/v1/experiments/{experiment.pk}/conclude", {"reason": "keep v1"}).status_code == 200
    events = list(ExperimentEvent.objects.order_by("id").values_list("action", "treatment_share", "api_key", "reason"))
    assert events == [
        ("start", 0.2, key.pk, ""),
        ("stop", 0.0, key.pk, "latency alarm"),
        ("conclude", 0.0, key.pk, "keep v1"),
    ]
    client.force_login(deployer)
    audit = client.get(f"/prompts/{NAME}/-/audit/", {"kind": "experiment"}).content.decode()
    assert f"Experiment #{experiment.pk} started on production: v1 / v2, 20.00% of traffic on v2" in audit
    assert "latency alarm" in audit and f"API key {key.name}" in audit
    timeline = client.get("/oncall/").content.decode()
    assert (
        f"experiment #{experiment.pk} stopped: v1 / v2" in timeline
        and "0.00% on v2" in timeline
        and "20.00% on v2" in timeline
    )


# 3 ------------------------------------------------------------------------------------------------


def test_door_3_ship_follows_the_verdict(v1_live, approve, api_for, django_capture_on_commit_callbacks):
    approve(v1_live[1])
    deploy, _ = api_for("deploy")
    experiment = started(deploy, {**EXPERIMENT, "traffic_fraction": 0.5}, django_capture_on_commit_callbacks)
    # Better quality, but latency 200 ms worse against a 50 ms margin: the guardrail says no.
    post_scores(
        deploy, experiment, {CONTROL: 40, TREATMENT: 40}, {CONTROL: 0.5, TREATMENT: 0.8}, {CONTROL: 400, TREATMENT: 600}
    )
    refused = deploy.post(f"/api/v1/experiments/{experiment.pk}/ship", {"reason": "quality is up"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "ship_blocked"
    assert "reject_guardrail_degraded" in refused.json()["error"]["message"]
    assert (
        Label.objects.get(name=PRODUCTION).version.number == 1
        and Experiment.objects.get(pk=experiment.pk).state == "running"
    )
    assert (
        deploy.post(f"/api/v1/experiments/{experiment.pk}/ship", {"reason": "x", "override": True}).status_code == 403
    )
    admin, admin_key = api_for("admin")
    with django_capture_on_commit_callbacks(execute=True):
        shipped = admin.post(
            f"/api/v1/experiments/{experiment.pk}/ship", {"reason": "latency budget raised", "override": True}
        )
    assert shipped.status_code == 200 and Label.objects.get(name=PRODUCTION).version.number == 2
    event = ExperimentEvent.objects.get(action=ExperimentAction.SHIP)
    assert (event.is_override, event.decision, event.api_key, event.treatment_share) == (
        True,
        "reject_guardrail_degraded",
        admin_key,
        1.0,
    )
    assert event.bypassed[0].startswith("ship verdict: the analysis decision is reject_guardrail_degraded")


def test_door_3_a_canary_ships_on_no_harm_with_guardrails_held_and_not_before(
    v1_live, approve, api_for, django_capture_on_commit_callbacks
):
    approve(v1_live[1])
    deploy, _ = api_for("deploy")
    canary = started(
        deploy, {**EXPERIMENT, "kind": "canary", "traffic_fraction": 0.2}, django_capture_on_commit_callbacks
    )
    early = deploy.post(f"/api/v1/experiments/{canary.pk}/ship", {"reason": "looks fine"})
    assert (
        early.status_code == 400
        and early.json()["error"]["code"] == "ship_blocked"
        and "insufficient_data" in early.json()["error"]["message"]
    )
    post_scores(
        deploy, canary, {CONTROL: 160, TREATMENT: 40}, {CONTROL: 0.7, TREATMENT: 0.7}, {CONTROL: 400, TREATMENT: 400}
    )
    analysis = deploy.get(f"/api/v1/experiments/{canary.pk}").json()["analysis"]
    assert analysis["decision"] == "no_significant_difference" and all(
        g["non_inferior"] for g in analysis["guardrails"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert deploy.post(f"/api/v1/experiments/{canary.pk}/ship", {"reason": "canary healthy"}).status_code == 200
    assert Label.objects.get(name=PRODUCTION).version.number == 2


# 4 ------------------------------------------------------------------------------------------------


def test_door_4_a_canary_without_a_fraction_gets_five_percent(v1_live, api_for):
    deploy, _ = api_for("deploy")
    canary = deploy.post("/api/v1/experiments", {**EXPERIMENT, "kind": "canary"})
    experiment = deploy.post("/api/v1/experiments", {**EXPERIMENT, "kind": "experiment"})
    assert (canary.json()["traffic_fraction"], experiment.json()["traffic_fraction"]) == (0.05, 0.5)
    assert Experiment.objects.get(pk=canary.json()["id"]).traffic_fraction == 0.05


# 5 ------------------------------------------------------------------------------------------------


def test_door_5_a_write_key_cannot_change_a_prompts_type(v1_live, api_for):
    write, _ = api_for("write")
    body = {"prompt": "Extract {{ name }}", "commit_message": "lenient now", "prompt_type": "extraction"}
    refused = write.post(f"/api/v1/prompts/{NAME}/versions", body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "policy_change_requires_admin"
    assert Prompt.objects.get(name=NAME).prompt_type == "system" and PromptVersion.objects.count() == 2
    assert (
        write.post(f"/api/v1/prompts/{NAME}/versions", {**body, "prompt_type": "system"}).status_code == 201
    )  # same type: fine
    admin, admin_key = api_for("admin")
    assert admin.post(f"/api/v1/prompts/{NAME}/versions", body).status_code == 201
    change = PolicyChange.objects.get()
    assert (change.area, change.before, change.after, change.api_key, change.prompt.name) == (
        PolicyArea.PROMPT_TYPE,
        "system",
        "extraction",
        admin_key,
        NAME,
    )


def test_door_5_the_authoring_form_keeps_an_authors_version_but_not_a_type_change(v1_live, client, author):
    from tests.promptreg.test_views_authoring import form_data

    client.force_login(author)
    page = client.post(f"/prompts/{NAME}/-/new/", form_data(prompt_type="extraction", commit_message="lenient"))
    assert page.status_code == 200 and "needs the Reviewer role" in page.content.decode()
    assert Prompt.objects.get(name=NAME).prompt_type == "system" and PromptVersion.objects.count() == 2
    assert client.post(f"/prompts/{NAME}/-/new/", form_data(commit_message="same type")).status_code == 302
    assert PromptVersion.objects.count() == 3


def test_door_5_gate_dataset_scorers_and_review_policy_are_reviewer_actions(v1_live, client, author, reviewer):
    prompt = Prompt.objects.get(name=NAME)
    strict = dataset_create(
        name="strict",
        scorers=["exact_match"],
        actor=SERVER,
        cases=[{"variables": {"name": "x"}, "expected": "Hello x"}],
    )
    as_author, as_reviewer = Actor(via=MoveVia.BUTTON, user=author), Actor(via=MoveVia.BUTTON, user=reviewer)
    with pytest.raises(Forbidden):
        prompt_set_dataset(prompt=prompt, dataset=strict, actor=as_author)
    client.force_login(author)
    assert client.post(f"/experiments/prompts/{NAME}/-/dataset/", {"dataset": strict.pk}).status_code == 403
    prompt_set_dataset(prompt=prompt, dataset=strict, actor=as_reviewer)
    with pytest.raises(Forbidden):  # an author cannot make the gate lenient by editing its dataset's scorers
        dataset_update(
            dataset=strict, actor=as_author, name="strict", scorers=[{"name": "contains_any", "keywords": ["Hello"]}]
        )
    assert strict.__class__.objects.get(pk=strict.pk).scorers == [{"name": "exact_match"}]
    dataset_update(
        dataset=strict, actor=as_author, name="strict", scorers=["exact_match"], description="typo fixed"
    )  # not a policy change
    dataset_update(dataset=strict, actor=as_reviewer, name="strict", scorers=[{"name": "regex", "pattern": "^Hello"}])
    with pytest.raises(Forbidden):
        review_policy_update(prompt_type="system", actor=as_author, changes={"requires_review": False})
    review_policy_update(
        prompt_type="system", actor=as_reviewer, changes={"min_approvals": 2}, reason="two pairs of eyes"
    )
    assert ReviewPolicy.for_type("system").min_approvals == 2
    assert list(PolicyChange.objects.order_by("id").values_list("area", "actor__username")) == [
        (PolicyArea.GATE_DATASET, "rita"),
        (PolicyArea.DATASET_SCORERS, "rita"),
        (PolicyArea.REVIEW_POLICY, "rita"),
    ]
    audit = client.get(f"/prompts/{NAME}/-/audit/", {"kind": "policy"}).content.decode()
    assert "rita changed the gate dataset: (none) (alpha 0.05) → strict (alpha 0.05)" in audit
    assert "rita changed the review policy: min_approvals=1 → min_approvals=2" in audit and "two pairs of eyes" in audit


def test_door_5_a_gate_datasets_cases_are_changed_only_by_reviewers(v1_live, client, author, reviewer):
    """Removing the case a bad version fails, rewriting its `expected`, or adding cases that the bad version's own
    output answers would let it through the gate."""
    prompt = Prompt.objects.get(name=NAME)
    gate = dataset_create(
        name="gate",
        scorers=["exact_match"],
        actor=SERVER,
        cases=[{"variables": {"name": n}, "expected": f"Hello {n}"} for n in ("ann", "bob")],
    )
    as_author, as_reviewer = Actor(via=MoveVia.BUTTON, user=author), Actor(via=MoveVia.BUTTON, user=reviewer)
    first, second = gate.active_cases()
    loose = {"variables": {"name": "ann"}, "expected": ""}
    case_save(dataset=gate, actor=as_author, case=first, **loose)  # not a gate dataset yet: the author's to edit
    prompt_set_dataset(prompt=prompt, dataset=gate, actor=as_reviewer)
    with pytest.raises(Forbidden, match="the gate dataset of " + NAME):
        case_remove(case=second, actor=as_author)
    with pytest.raises(Forbidden):
        case_save(dataset=gate, actor=as_author, case=second, variables={"name": "bob"}, expected="anything")
    with pytest.raises(Forbidden):
        dataset_import(dataset=gate, actor=as_author, rows=validate_cases([loose]), replace=True)
    assert [(c.variables["name"], c.expected) for c in gate.active_cases()] == [("ann", ""), ("bob", "Hello bob")]
    client.force_login(author)
    page = client.get(f"/experiments/datasets/{gate.pk}/").content.decode()
    assert "is a policy change for a Reviewer or Admin" in page and f"/cases/{second.pk}/remove/" not in page
    assert f"/datasets/{gate.pk}/cases/new/" not in page
    assert client.post(f"/experiments/datasets/{gate.pk}/cases/{second.pk}/remove/").status_code in (302, 403)
    assert gate.active_cases().count() == 2
    with pytest.raises(Forbidden):  # cases whose expected answer is the candidate's own output would outweigh others
        case_save(dataset=gate, actor=as_author, variables={"name": "cy"}, expected="Hello cy")
    with pytest.raises(Forbidden):
        dataset_import(dataset=gate, actor=as_author, rows=validate_cases([loose]))
    case_save(dataset=gate, actor=as_reviewer, variables={"name": "cy"}, expected="Hello cy")
    case_save(dataset=gate, actor=as_reviewer, case=first, variables={"name": "ann"}, expected="Hello ann")
    case_remove(case=second, actor=as_reviewer)
    assert [(c.variables["name"], c.expected) for c in gate.active_cases()] == [
        ("ann", "Hello ann"),
        ("cy", "Hello cy"),
    ]
    changes = PolicyChange.objects.filter(area=PolicyArea.DATASET_CASES).order_by("id")
    assert [(c.actor.username, c.prompt.name) for c in changes] == [("rita", NAME)] * 3
    assert changes[0].before == "" and '"expected": "Hello cy"' in changes[0].after
    assert '"expected": ""' in changes[1].before and '"expected": "Hello ann"' in changes[1].after
    assert '"expected": "Hello bob"' in changes[2].before and changes[2].after == ""


# 6 ------------------------------------------------------------------------------------------------


def test_door_6_a_keys_owner_authors_its_versions_and_cannot_approve_them(v1_live, client, reviewer):
    ar = User.objects.create_user("ar", "ar@example.com", "pw")
    ar.groups.set(reviewer.groups.all())  # a reviewer who also writes through a key
    _, secret = issue("write", name="ar-laptop", owner=ar)
    created = Api(client, bearer(secret)).post(
        f"/api/v1/prompts/{NAME}/versions", {"prompt": "Hi {{ name }}", "commit_message": "mine"}
    )
    version = PromptVersion.objects.get(prompt__name=NAME, number=created.json()["version"])
    assert (version.created_by, version.created_by_key.name, version.author_name) == (
        ar,
        "ar-laptop",
        "ar (API key ar-laptop)",
    )
    version_submit_for_review(version=version, actor=SERVER)
    with pytest.raises(Forbidden):
        review_submit(version=version, actor=Actor(via=MoveVia.BUTTON, user=ar), decision=ReviewDecision.APPROVE)
    assert version.approval_count() == 0
    review_submit(version=version, actor=Actor(via=MoveVia.BUTTON, user=reviewer), decision=ReviewDecision.APPROVE)
    assert version.approval_count() == 1


def test_door_6_versions_without_a_person_are_flagged_and_the_commands_name_one(
    v1_live, client, author, reviewer, tmp_path
):
    _, secret = issue("write", name="legacy")
    Api(client, bearer(secret)).post(
        f"/api/v1/prompts/{NAME}/versions", {"prompt": "Yo {{ name }}", "commit_message": "legacy key"}
    )
    legacy = PromptVersion.objects.get(prompt__name=NAME, number=3)
    assert legacy.created_by is None and not legacy.has_accountable_author
    version_submit_for_review(version=legacy, actor=SERVER)
    client.force_login(reviewer)
    assert "no accountable author" in client.get(f"/prompts/{NAME}/-/v/3/").content.decode()
    assert "no accountable author" in client.get("/reviews/").content.decode()
    assert "no accountable author" not in client.get(f"/prompts/{NAME}/-/v/1/").content.decode()

    out = StringIO()
    call_command("create_api_key", "ci-pipeline", "--scopes", "write", "--owner", "alice", "--json", stdout=out)
    assert ApiKey.objects.get(name="ci-pipeline").owner == author
    with pytest.raises(Exception, match="no user named"):
        call_command("create_api_key", "x", "--scopes", "write", "--owner", "nobody", stdout=StringIO())
    template = tmp_path / "t.txt"
    template.write_text("Howdy {{ name }}")
    call_command(
        "prompt", "publish", NAME, str(template), "-m", "from the shell", "--author", "alice", stdout=StringIO()
    )
    assert PromptVersion.objects.get(prompt__name=NAME, number=4).created_by == author


def test_door_6_the_dashboard_key_page_issues_keys_owned_by_the_signed_in_user(
    v1_live, client, author, admin_user, deployer
):
    client.force_login(author)
    page = client.post("/keys/", {"name": "alice-laptop", "scopes": ["write"]})
    key = ApiKey.objects.get(name="alice-laptop")
    assert (key.owner, key.created_by, key.scopes, key.gate_override) == (author, author, ["write"], False)
    secret = page.content.decode().split('id="issued-secret"')[1].split("<pre>")[1].split("</pre>")[0]
    assert ApiKey.find(secret) == key and secret not in client.get("/keys/").content.decode()  # shown once
    # No key stronger than its owner: an Author gets no deploy scope and no gate override.
    for data, refusal in (
        ({"name": "x", "scopes": ["deploy"]}, "needs the Deployer role"),
        ({"name": "y", "scopes": ["write"], "gate_override": "on"}, "only an Admin issues one"),
    ):
        assert refusal in client.post("/keys/", data).content.decode()
    assert not ApiKey.objects.filter(name__in=["x", "y"]).exists()
    other, _ = issue("deploy", name="dave-ci", owner=deployer)
    assert "dave-ci" not in client.get("/keys/").content.decode()  # others' keys are not listed
    assert (
        client.post(f"/keys/{other.pk}/revoke/").status_code == 403
        and ApiKey.objects.get(pk=other.pk).revoked_at is None
    )
    client.post(f"/keys/{key.pk}/revoke/")
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    assert (
        Api(client, bearer(secret))
        .post(f"/api/v1/prompts/{NAME}/versions", {"prompt": "x", "commit_message": "x"})
        .status_code
        == 401
    )
    client.force_login(admin_user)
    client.post("/keys/", {"name": "gitops", "scopes": ["write", "deploy"], "gate_override": "on"})
    assert ApiKey.objects.get(name="gitops").gate_override and "dave-ci" in client.get("/keys/").content.decode()
    client.post(f"/keys/{other.pk}/revoke/")
    assert ApiKey.objects.get(pk=other.pk).revoked_at is not None


# 7 ------------------------------------------------------------------------------------------------


def test_door_7_protected_labels_globally_and_per_type(v1_live, api_for, client, reviewer, settings):
    deploy, _ = api_for("deploy")
    assert (
        deploy.post(f"/api/v1/prompts/{NAME}/labels/staging", {"version": 2, "reason": "try"}).status_code == 200
    )  # unprotected
    settings.PROTECTED_LABELS = ["production", "staging"]
    moved = deploy.post(f"/api/v1/prompts/{NAME}/labels/staging", {"version": 1, "reason": "x"})
    assert moved.status_code == 200  # v1 is approved: the gates pass
    refused = deploy.post(f"/api/v1/prompts/{NAME}/labels/staging", {"version": 2, "reason": "again"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "gate_blocked"
    assert Label.objects.get(name="staging").version.number == 1
    settings.PROTECTED_LABELS = ["production"]
    review_policy_update(
        prompt_type="system", actor=Actor(via=MoveVia.BUTTON, user=reviewer), changes={"protected_labels": ["eu-prod"]}
    )
    refused = deploy.post(f"/api/v1/prompts/{NAME}/labels/eu-prod", {"version": 2, "reason": "x"})
    assert (
        refused.status_code == 400
        and refused.json()["error"]["code"] == "gate_blocked"
        and not Label.objects.filter(name="eu-prod").exists()
    )
    client.force_login(reviewer)
    page = client.get(f"/prompts/{NAME}/").content.decode()
    shown = page.split('id="protected-labels"')[1].split("</p>")[0]
    assert "eu-prod" in shown and "production" in shown and "staging" not in shown


# 8 ------------------------------------------------------------------------------------------------


def test_door_8_the_langfuse_route_never_bypasses_a_gate_silently(v1_live, client):
    admin, secret = issue("admin", name="lf-admin")
    body = {"name": NAME, "prompt": "Sneaky {{ name }}", "labels": ["production"]}
    refused = client.post(
        "/api/public/v2/prompts", body, content_type="application/json", **basic(admin.public_id, secret)
    )
    assert (
        refused.status_code == 400
        and refused.json()["error"] == "GateBlockedError"
        and "peer review" in refused.json()["message"]
    )
    assert (
        PromptVersion.objects.filter(prompt__name=NAME).count() == 2
        and Label.objects.get(name=PRODUCTION).version.number == 1
    )
    patched = client.patch(
        f"/api/public/v2/prompts/{NAME}/versions/2",
        {"newLabels": ["production"]},
        content_type="application/json",
        **basic(admin.public_id, secret),
    )
    assert patched.status_code == 400 and Label.objects.get(name=PRODUCTION).version.number == 1

    pipeline, secret = issue("write", "deploy", name="gitops", gate_override=True)
    ok = client.post(
        "/api/public/v2/prompts", body, content_type="application/json", **basic(pipeline.public_id, secret)
    )
    assert ok.status_code == 201 and Label.objects.get(name=PRODUCTION).version.number == 3
    move = LabelMove.objects.latest("id")
    assert (move.is_override, move.api_key, move.to_version.number) == (
        True,
        pipeline,
        3,
    ) and "peer review" in move.bypassed_gates[0]
    with pytest.raises(Exception, match="deploy scope"):
        issue("write", name="bad", gate_override=True)


# 9 ------------------------------------------------------------------------------------------------


def test_door_9_a_pinned_rollback_moves_once(v1_live, approve, api_for):
    approve(v1_live[1])
    deploy, _ = api_for("deploy")
    assert deploy.post(f"/api/v1/prompts/{NAME}/labels/production", {"version": 2, "reason": "ship"}).status_code == 200
    answers = [
        deploy.post(f"/api/v1/prompts/{NAME}/rollback", {"reason": "bad answers", "expected_current": 2})
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 409, 409]
    assert answers[1].json()["error"]["code"] == "stale_expectation"
    assert Label.objects.get(name=PRODUCTION).version.number == 1
    assert LabelMove.objects.filter(is_rollback=True).count() == 1


# 12 -----------------------------------------------------------------------------------------------


def test_door_12_refreshing_an_analysis_needs_the_deployer_role(
    v1_live, approve, client, outsider, author, deployer, django_capture_on_commit_callbacks
):
    approve(v1_live[1])
    deploy = Api(client, bearer(issue("deploy")[1]))
    experiment = started(deploy, EXPERIMENT, django_capture_on_commit_callbacks)
    AnalysisSnapshot.objects.all().delete()
    refresh = f"/experiments/ab/{experiment.pk}/refresh/"
    for user in (outsider, author):
        client.force_login(user)
        assert client.post(refresh).status_code == 403
        page = client.get(f"/experiments/ab/{experiment.pk}/").content.decode()
        polled = client.get(f"/experiments/ab/{experiment.pk}/", HTTP_HX_REQUEST="true").content.decode()
        assert refresh not in page and refresh not in polled  # no button that can only answer 403
    assert not AnalysisSnapshot.objects.exists()
    client.force_login(deployer)
    assert refresh in client.get(f"/experiments/ab/{experiment.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert client.post(refresh).status_code == 302
    assert AnalysisSnapshot.objects.filter(experiment=experiment).count() == 1


# 18 -----------------------------------------------------------------------------------------------


def test_door_18_every_production_rollback_alerts_who_from_to_and_why(
    v1_live, approve, api_for, client, deployer, django_capture_on_commit_callbacks
):
    approve(v1_live[1])
    AlertChannel.objects.create(name="oncall", kind="email", target="oncall@example.com")
    deploy, key = api_for("deploy")
    for reason in ("ship", "again"):
        deploy.post(f"/api/v1/prompts/{NAME}/labels/production", {"version": 2, "reason": reason})
        with django_capture_on_commit_callbacks(execute=True):
            if reason == "ship":
                assert (
                    deploy.post(f"/api/v1/prompts/{NAME}/rollback", {"reason": "refund answers wrong"}).status_code
                    == 200
                )
            else:
                client.force_login(deployer)
                client.post(
                    f"/prompts/{NAME}/-/rollback/", {"reason": "still wrong", "expected_current": 2, "next": "/oncall/"}
                )  # the on-call button opens this dialog
    alerts = list(Alert.objects.order_by("id"))
    assert [a.kind for a in alerts] == [AlertKind.MANUAL_ROLLBACK] * 2
    assert alerts[0].title == f"{NAME}: production rolled back from v2 to v1 by API key {key.name}"
    assert "Why: refund answers wrong" in alerts[0].text and "dave (dashboard button)" in alerts[1].text
    assert AlertDelivery.objects.count() == 2
    deliver_alert.apply(args=[AlertDelivery.objects.order_by("id").first().id])
    assert "refund answers wrong" in mail.outbox[0].body
    # A label nobody protects is not an emergency: no alert.
    deploy.post(f"/api/v1/prompts/{NAME}/labels/staging", {"version": 1, "reason": "a"})
    deploy.post(f"/api/v1/prompts/{NAME}/labels/staging", {"version": 2, "reason": "b"})
    deploy.post(f"/api/v1/prompts/{NAME}/rollback", {"reason": "c", "label": "staging"})
    assert Alert.objects.count() == 2


def test_door_5_the_django_admin_is_no_side_door_to_policy_or_approvals(v1_live, client, author):
    from django.contrib.auth.models import Permission

    root = User.objects.create_superuser("root", "root@example.com", "x")
    prompt = Prompt.objects.get(name=NAME)
    client.force_login(root)
    form = {
        "name": NAME,
        "description": "",
        "prompt_type": "extraction",
        "owner": "",
        "tags": [],
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        "retired_at_0": "",
        "retired_at_1": "",
    }
    changed = client.post(f"/admin/promptreg/prompt/{prompt.pk}/change/", form)
    assert changed.status_code == 302 and Prompt.objects.get(pk=prompt.pk).prompt_type == "extraction"
    assert PolicyChange.objects.get().actor == root
    # Staff with the model permission but no Reviewer role: refused by the service, nothing saved.
    author.is_staff = True
    author.save()
    author.user_permissions.set(
        Permission.objects.filter(
            codename__in=["change_prompt", "view_prompt", "change_reviewpolicy", "view_reviewpolicy"]
        )
    )
    client.force_login(author)
    assert (
        client.post(f"/admin/promptreg/prompt/{prompt.pk}/change/", {**form, "prompt_type": "system"}).status_code
        == 403
    )
    assert Prompt.objects.get(pk=prompt.pk).prompt_type == "extraction" and PolicyChange.objects.count() == 1
    policy = ReviewPolicy.objects.get(prompt_type="system")
    policy_form = {"prompt_type": "system", "min_approvals": 0, "protected_labels": "[]"}  # requires_review unticked
    assert client.post(f"/admin/promptreg/reviewpolicy/{policy.pk}/change/", policy_form).status_code == 403
    assert ReviewPolicy.objects.get(pk=policy.pk).requires_review
    # Approvals come from reviews only: the admin cannot add one or flip a version's status.
    client.force_login(root)
    assert client.get("/admin/promptreg/review/add/").status_code == 403
    client.post(f"/admin/promptreg/promptversion/{v1_live[1].pk}/change/", {"status": "approved"})
    assert PromptVersion.objects.get(pk=v1_live[1].pk).status == "draft"
