"""The role × dashboard-POST matrix: every dashboard URL that takes a POST, posted by a signed-out
visitor, a signed-in user without a role, an Author, a Reviewer, a Deployer and an Admin.

Without the view's role: a 403 (signed out: the login page) and nothing changed. With it: let
through to the form and the service. A new dashboard URL fails here until it is classified."""

from __future__ import annotations

import pytest
from django.urls import URLResolver, get_resolver, reverse

from experiments.creation import experiment_create
from experiments.eval_datasets import dataset_create
from experiments.models import AnalysisSnapshot, Case, Dataset, EvalRun, Experiment, ProviderSettings
from promptreg.models import ApiKey, Label, LabelMove, PolicyChange, Prompt, PromptVersion, Review
from promptreg.permissions import ADMIN, AUTHOR, DEPLOYER, REVIEWER
from rollout.models import AlertChannel, Monitor, WebhookEvent, WebhookSubscription
from rollout.webhooks import webhook_subscribe
from tests.conftest import make_user
from tests.security.conftest import NAME, SERVER

ANY_ROLE = "any role"
# url name → (role needed to POST, args). Reviewers in the fixtures are Authors too; Admins have every role.
POSTS = {
    "promptreg:prompt-new": (AUTHOR, []),
    "promptreg:authoring-preview": (AUTHOR, []),
    "promptreg:version-new": (AUTHOR, [NAME]),
    "promptreg:version-submit": (AUTHOR, [NAME, 2]),
    "promptreg:version-tags": (AUTHOR, [NAME, 2]),
    "promptreg:version-review": (REVIEWER, [NAME, 2]),
    "promptreg:version-activate": (DEPLOYER, [NAME, 1]),
    "promptreg:prompt-rollback": (DEPLOYER, [NAME]),
    "promptreg:prompt-retire": (DEPLOYER, [NAME]),
    "promptreg:prompt-restore": (DEPLOYER, [NAME]),
    "promptreg:prompt-labels": (DEPLOYER, [NAME]),
    "experiments:experiment-new": (DEPLOYER, []),
    "experiments:experiment-refresh": (DEPLOYER, ["experiment"]),
    "experiments:experiment-action": (DEPLOYER, ["experiment", "start"]),
    "experiments:dataset-list": (AUTHOR, []),
    "experiments:dataset-edit": (AUTHOR, ["dataset"]),
    "experiments:dataset-upload": (AUTHOR, ["dataset"]),
    "experiments:case-new": (AUTHOR, ["dataset"]),
    "experiments:case-edit": (AUTHOR, ["dataset", "case"]),
    "experiments:case-remove": (AUTHOR, ["dataset", "case"]),
    "experiments:run-cancel": (AUTHOR, ["run"]),
    "experiments:version-run": (AUTHOR, [NAME, 2]),
    "experiments:playground-compare": (AUTHOR, []),
    "experiments:prompt-dataset": (REVIEWER, [NAME]),  # a policy change
    "rollout:channels": (ADMIN, []),
    "rollout:channel-delete": (ADMIN, ["channel"]),
    "rollout:incident-acknowledge": (DEPLOYER, [999999]),
    "rollout:incident-add-cases": (AUTHOR, [999999]),
    "rollout:monitor-edit": (DEPLOYER, [NAME]),
    "rollout:webhooks": (ADMIN, []),
    "rollout:webhook-remove": (ADMIN, ["webhook"]),
    "rollout:webhook-test": (ADMIN, ["webhook"]),
    "promptreg:api-keys": (ANY_ROLE, []),  # what the key may do is bounded by the roles (test_doors)
    "promptreg:api-key-revoke": (ADMIN, ["key"]),  # or the key's owner; this key belongs to nobody here
    "experiments:provider": (ADMIN, []),
    "experiments:provider-test": (ADMIN, []),
}
GET_ONLY = {
    "promptreg:prompt-list",
    "promptreg:review-inbox",
    "promptreg:review-count",
    "promptreg:audit",
    "promptreg:prompt-detail",
    "promptreg:version-diff",
    "promptreg:prompt-audit",
    "promptreg:version-detail",
    "experiments:experiment-list",
    "experiments:experiment-sample-size",
    "experiments:experiment-detail",
    "experiments:dataset-detail",
    "experiments:dataset-export",
    "experiments:dataset-history",
    "experiments:run-detail",
    "experiments:run-progress",
    "experiments:playground-result",
    "experiments:version-evaluation",
    "experiments:version-structure",
    "rollout:oncall",
    "rollout:incident",
}
ROLES_OF = {
    "outsider": (),
    "author": (AUTHOR,),
    "reviewer": (REVIEWER, AUTHOR),
    "deployer": (DEPLOYER,),
    "admin": (ADMIN,),
}


def dashboard_url_names() -> set[str]:
    names = set()
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver) and pattern.namespace in ("promptreg", "experiments", "rollout"):
            names |= {f"{pattern.namespace}:{p.name}" for p in pattern.url_patterns}
    return names


def test_every_dashboard_url_is_classified(db):
    assert dashboard_url_names() == set(POSTS) | GET_ONLY, (
        "classify each new dashboard URL in POSTS (with its role) or GET_ONLY"
    )


def world() -> tuple:
    return (
        PromptVersion.objects.count(),
        list(PromptVersion.objects.order_by("id").values_list("status", flat=True)),
        list(Label.objects.values_list("name", "version_id")),
        LabelMove.objects.count(),
        Review.objects.count(),
        list(Prompt.objects.values_list("retired_at", "prompt_type")),
        list(Experiment.objects.values_list("state", flat=True)),
        AnalysisSnapshot.objects.count(),
        Dataset.objects.count(),
        list(Dataset.objects.values_list("name", "scorers")),
        list(Case.objects.values_list("removed_at", "expected")),
        list(EvalRun.objects.values_list("state", "cancel_requested")),
        AlertChannel.objects.count(),
        Monitor.objects.count(),
        PolicyChange.objects.count(),
        list(ApiKey.objects.values_list("name", "revoked_at")),
        list(WebhookSubscription.objects.values_list("removed_at", flat=True)),
        WebhookEvent.objects.count(),
        list(ProviderSettings.objects.values_list("base_url", "model", "api_key_encrypted")),
    )


@pytest.fixture
def objects(v1_live, settings):
    """A live prompt (v1) with a draft (v2), a dataset with a case, a queued run, a draft experiment, a channel, a
    webhook."""
    settings.LLM_BASE_URL, settings.LLM_MODEL = "http://127.0.0.1:9/v1", "matrix-model"  # runs are only queued
    dataset = dataset_create(
        name="golden",
        scorers=["exact_match"],
        actor=SERVER,
        cases=[{"variables": {"name": "x"}, "expected": "Hello x"}],
    )
    run = EvalRun.objects.create(version=v1_live[0], dataset=dataset, case_ids=[dataset.cases.get().pk], total=1)
    experiment = experiment_create(actor=SERVER, prompt=NAME, control_version=1, treatment_version=2)
    channel = AlertChannel.objects.create(name="ops", kind="email", target="ops@example.com")
    key, _ = ApiKey.issue(name="app", scopes=["read"])
    webhook = webhook_subscribe(
        url="http://127.0.0.1:9/hooks", events=["label.moved"], prompts=None, secret="matrix-secret-0123", actor=SERVER
    )
    return {
        "dataset": dataset.pk,
        "case": dataset.cases.get().pk,
        "run": run.pk,
        "experiment": experiment.pk,
        "channel": channel.pk,
        "key": key.pk,
        "webhook": webhook.pk,
    }


DATA = {
    "scopes": "read",
    "reason": "matrix",
    "comment": "matrix",
    "decision": "approve",
    "name": "matrix-set",
    "scorers": "exact_match",
    "expected": "x",
    "variables": "{}",
}


@pytest.mark.parametrize("url_name", sorted(POSTS))
def test_role_matrix(client, objects, url_name):
    role, args = POSTS[url_name]
    url = reverse(url_name, args=[objects.get(a, a) for a in args])
    users = {name: make_user(f"m-{name}", *roles) for name, roles in ROLES_OF.items()}
    before = world()
    client.logout()
    signed_out = client.post(url, DATA)
    assert signed_out.status_code == 302 and "/accounts/login/" in signed_out["Location"], url_name
    allowed = [n for n, roles in ROLES_OF.items() if role in roles or ADMIN in roles or (role == ANY_ROLE and roles)]
    for name in sorted(users, key=lambda n: n in allowed):  # refusals first, on an untouched world
        client.force_login(users[name])
        response = client.post(url, DATA)
        if name in allowed:
            # let through to the view's own work (the incident is made up: its 404 comes after the role check)
            assert response.status_code not in (403, 404) or url_name.startswith("rollout:incident-"), (
                f"{url_name}: {name} got {response.status_code}"
            )
        else:
            assert response.status_code == 403, f"{url_name}: {name} got {response.status_code}"
            assert world() == before, f"{url_name}: {name}'s refused POST changed something"
