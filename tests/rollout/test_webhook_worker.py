"""Webhooks end to end: every prompt event, delivered by a real `celery worker` after commit over HTTP
to local receivers, once per subscription, each body signed with that subscription's secret."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter

import pytest
from django.db import close_old_connections

from experiments.creation import experiment_create
from experiments.services import experiment_ship, experiment_start, experiment_stop
from promptreg.models import PRODUCTION, MoveVia, ReviewPolicy
from promptreg.services import (
    Actor,
    label_move,
    prompt_restore,
    prompt_retire,
    review_submit,
    rollback,
    version_submit_for_review,
)
from rollout import webhooks
from rollout.models import DeliveryStatus, WebhookDelivery
from tests.celery_worker import Worker, purge_queue, wait_for
from tests.rollout.webhook_receiver import Receiver

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(120),
]

EVERYTHING = {
    "version.created": 2,
    "review.decided": 1,
    "label.moved": 4,
    "experiment.started": 2,
    "experiment.stopped": 1,
    "experiment.shipped": 1,
    "prompt.retired": 1,
    "prompt.restored": 1,
}


@pytest.fixture
def worker():
    purge_queue()
    started = Worker({"ALERT_ALLOWED_HOSTS": "127.0.0.1"}).wait_ready()
    yield started
    started.stop()


def make_events(publish, reviewer, deployer, api_as) -> None:
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    cli = Actor(via=MoveVia.CLI)
    publish("support-system", "Hi {{ name }}")
    v2 = publish("support-system", "Hello {{ name }}")
    version_submit_for_review(version=v2, actor=cli)
    review_submit(
        version=v2, actor=Actor(via=MoveVia.BUTTON, user=reviewer), decision="approve", comment="Reads better"
    )
    label_move(
        name="support-system",
        label=PRODUCTION,
        version=1,
        actor=Actor(via=MoveVia.BUTTON, user=deployer),
        reason="first release",
    )
    r = api_as("deploy").post_json(
        "/api/v1/prompts/support-system/labels/production", {"version": 2, "reason": "approved"}
    )
    assert r.status_code == 200, r.content
    rollback(name="support-system", actor=Actor(via=MoveVia.AUTO_ROLLBACK), reason="quality below the floor")
    first = experiment_create(actor=cli, prompt="support-system", control_version=1, treatment_version=2)
    experiment_start(experiment_id=first.pk, actor=cli)
    experiment_stop(experiment_id=first.pk, actor=cli, reason="kill switch")
    second = experiment_create(actor=cli, prompt="support-system", control_version=1, treatment_version=2)
    experiment_start(experiment_id=second.pk, actor=cli)
    experiment_ship(
        experiment_id=second.pk, actor=cli, reason="treatment wins", override=True
    )  # no data: past the verdict
    prompt_retire(name="support-system", actor=cli, reason="replaced")
    prompt_restore(name="support-system", actor=cli, reason="still needed")


def test_every_event_reaches_every_subscription_once_signed(worker, publish, reviewer, deployer, api_as):
    cli = Actor(via=MoveVia.CLI)
    with Receiver() as everything, Receiver() as deploys, Receiver() as elsewhere:
        secrets = {everything: "a" * 32, deploys: "b" * 32, elsewhere: "c" * 32}
        webhooks.webhook_subscribe(
            url=everything.url, events=list(webhooks.EVENTS), prompts=None, secret=secrets[everything], actor=cli
        )
        webhooks.webhook_subscribe(
            url=deploys.url,
            events=["label.moved", "experiment.shipped"],
            prompts=["support-system"],
            secret=secrets[deploys],
            actor=cli,
        )
        webhooks.webhook_subscribe(
            url=elsewhere.url,
            events=list(webhooks.EVENTS),
            prompts=["billing-system"],
            secret=secrets[elsewhere],
            actor=cli,
        )

        make_events(publish, reviewer, deployer, api_as)

        def all_sent() -> bool:
            close_old_connections()
            return (
                WebhookDelivery.objects.count() == 18
                and not WebhookDelivery.objects.exclude(status=DeliveryStatus.SENT).exists()
            )

        wait_for(all_sent, 60, "the worker to deliver every event")

    for hook in (everything, deploys):
        for headers, raw, _ in hook.requests:
            expected = "sha256=" + hmac.new(secrets[hook].encode(), raw, hashlib.sha256).hexdigest()
            assert headers["X-Promptreg-Signature"] == expected
        ids = [body["id"] for body in hook.bodies]
        assert len(ids) == len(set(ids)) == len(hook.requests)  # each event once
    assert Counter(b["event"] for b in everything.bodies) == EVERYTHING
    assert Counter(b["event"] for b in deploys.bodies) == {"label.moved": 4, "experiment.shipped": 1}
    assert elsewhere.requests == []
    assert {b["prompt"] for b in everything.bodies} == {"support-system"}

    moves = [b["data"] for b in deploys.bodies if b["event"] == "label.moved"]
    assert sorted((m["via"], m["version"], m["is_rollback"]) for m in moves) == [
        ("api", 2, False),
        ("auto_rollback", 1, True),
        ("button", 1, False),
        ("experiment", 2, False),
    ]
    review = next(b["data"] for b in everything.bodies if b["event"] == "review.decided")
    assert (review["version"], review["decision"], review["status"], review["actor"]) == (
        2,
        "approve",
        "approved",
        "rita",
    )
    shipped = next(b["data"] for b in deploys.bodies if b["event"] == "experiment.shipped")
    assert (shipped["state"], shipped["shipped"], shipped["treatment_version"], shipped["reason"]) == (
        "concluded",
        True,
        2,
        "treatment wins",
    )
