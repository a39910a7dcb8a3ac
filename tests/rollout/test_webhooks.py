"""Webhooks: subscriptions by API and dashboard, events recorded with their action, signed deliveries
over real HTTP to a local receiver, retries with backoff on a controlled clock, SSRF refusals."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from promptreg.exceptions import GateBlocked
from promptreg.models import PRODUCTION, ReviewPolicy
from promptreg.services import label_move, prompt_retire
from rollout import webhooks
from rollout.models import DeliveryStatus, WebhookDelivery, WebhookEvent, WebhookSubscription
from tests.conftest import PASSWORD
from tests.rollout.webhook_receiver import Receiver

SECRET = "s3cret-s3cret-s3cret"


def subscribe(url: str, events=("label.moved",), prompts=None, secret=SECRET) -> WebhookSubscription:
    from promptreg.models import MoveVia
    from promptreg.services import Actor

    return webhooks.webhook_subscribe(
        url=url, events=list(events), prompts=prompts, secret=secret, actor=Actor(via=MoveVia.CLI)
    )


def valid_signature(headers: dict, raw: bytes, secret: str = SECRET) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Promptreg-Signature"], expected)


# --- API -----------------------------------------------------------------------------


def test_admin_key_subscribes_lists_and_removes(api_as):
    admin = api_as("admin")
    body = {
        "url": "http://127.0.0.1:9/hooks",
        "events": ["label.moved", "version.created"],
        "prompts": ["support-system"],
        "secret": SECRET,
    }
    r = admin.post_json("/api/v1/webhooks", body)
    assert r.status_code == 201, r.content
    created = r.json()
    assert created["events"] == ["version.created", "label.moved"] and created["prompts"] == ["support-system"]
    assert "secret" not in created and created["created_by"] == "API key admin"
    subscription = WebhookSubscription.objects.get(pk=created["id"])
    assert (
        subscription.secret == SECRET and subscription.history.get().history_change_reason == "added by API key admin"
    )
    assert not hasattr(subscription.history.get(), "secret")  # the audit trail never holds the secret

    listed = admin.get("/api/v1/webhooks").json()["data"]
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]

    r = admin.delete(f"/api/v1/webhooks/{created['id']}")
    assert r.status_code == 200 and r.json()["id"] == created["id"]
    subscription.refresh_from_db()
    assert subscription.removed_at is not None and subscription.secret == ""
    assert subscription.history.latest().history_change_reason == "removed by API key admin"
    assert admin.get("/api/v1/webhooks").json()["data"] == []
    assert admin.delete(f"/api/v1/webhooks/{created['id']}").json()["error"]["code"] == "webhook_not_found"


@pytest.mark.parametrize(
    "change, field",
    [
        ({"url": "http://10.1.2.3/hooks"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "url"),
        ({"url": "ftp://hooks.example.com/x"}, "url"),
        ({"events": []}, "events"),
        ({"events": ["label.moved", "prompt.deleted"]}, "events"),
        ({"prompts": ["Not A Name!"]}, "prompts"),
        ({"prompts": []}, "prompts"),
        ({"secret": "short"}, "secret"),
    ],
)
def test_bad_subscriptions_are_400s_naming_the_field(api_as, settings, change, field):
    settings.ALERT_ALLOWED_HOSTS = []
    body = {
        "url": "https://93.184.215.14/hooks",
        "events": ["label.moved"],
        "prompts": None,
        "secret": SECRET,
        **change,
    }
    r = api_as("admin").post_json("/api/v1/webhooks", body)
    assert r.status_code == 400, r.content
    assert r.json()["error"]["message"].startswith(f"{field}:")
    assert not WebhookSubscription.objects.exists()


def test_only_admin_keys_manage_webhooks(api_as):
    subscription = subscribe("http://127.0.0.1:9/hooks")
    deployer = api_as("deploy")
    assert deployer.get("/api/v1/webhooks").status_code == 403
    assert (
        deployer.post_json(
            "/api/v1/webhooks", {"url": "http://127.0.0.1:9/", "events": ["label.moved"], "secret": SECRET}
        ).status_code
        == 403
    )
    assert deployer.delete(f"/api/v1/webhooks/{subscription.pk}").status_code == 403
    assert deployer.post_json(f"/api/v1/webhooks/{subscription.pk}/test").status_code == 403
    assert WebhookSubscription.objects.count() == 1 and not WebhookEvent.objects.exists()


# --- events ---------------------------------------------------------------------------


def test_events_are_recorded_with_their_action_and_only_for_matching_subscriptions(publish, cli):
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    every = subscribe("http://127.0.0.1:9/all", events=webhooks.EVENTS)
    only_other = subscribe("http://127.0.0.1:9/other", events=webhooks.EVENTS, prompts=["billing-system"])
    publish("support-system", "Hi {{ name }}")
    event = WebhookEvent.objects.get()
    assert (event.event, event.prompt) == ("version.created", "support-system")
    assert event.data["version"] == 1 and event.data["prompt"] == "Hi {{ name }}" and event.data["actor"] == "promptreg"
    assert [d.subscription for d in WebhookDelivery.objects.all()] == [every]
    assert not only_other.deliveries.exists()

    ReviewPolicy.objects.update(requires_review=True)
    publish("support-system", "Hello {{ name }}")
    with pytest.raises(GateBlocked):
        label_move(name="support-system", label=PRODUCTION, version=2, actor=cli, reason="not reviewed")
    assert not WebhookEvent.objects.filter(event="label.moved").exists()  # the refused move left no event

    prompt_retire(name="support-system", actor=cli, reason="replaced")
    retired = WebhookEvent.objects.get(event="prompt.retired")
    assert retired.data["reason"] == "replaced" and retired.data["retired_at"]


def test_a_delivery_is_a_signed_post_of_the_event(publish, cli):
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    publish("support-system", "Hi {{ name }}")
    with Receiver() as hook:
        subscription = subscribe(hook.url)
        move = label_move(name="support-system", label=PRODUCTION, version=1, actor=cli, reason="first release")
        delivery = WebhookDelivery.objects.get()
        assert webhooks.deliver(delivery.pk) == "sent"
        assert webhooks.deliver(delivery.pk) == "skipped"  # never twice
    [(headers, raw, status)] = hook.requests
    assert valid_signature(headers, raw) and not valid_signature(headers, raw, secret="another-secret-entirely")
    body = json.loads(raw)
    assert body.keys() == {"id", "event", "created_at", "prompt", "data"}
    assert (body["event"], body["prompt"], body["id"]) == ("label.moved", "support-system", str(delivery.event_id))
    assert body["data"]["id"] == move.id and body["data"]["via"] == "cli" and body["data"]["version"] == 1
    assert body["data"]["is_rollback"] is False and body["data"]["reason"] == "first release"
    assert headers["X-Promptreg-Event"] == "label.moved" and headers["X-Promptreg-Delivery"] == body["id"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status, delivery.response_snippet) == (
        DeliveryStatus.SENT,
        1,
        200,
        "ok",
    )
    assert subscription.deliveries.get() == delivery


def test_a_failed_delivery_is_retried_once_with_backoff_and_succeeds(publish, cli):
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    publish("support-system", "Hi {{ name }}")
    start = timezone.now()
    with Receiver(statuses=[500]) as hook, time_machine.travel(start, tick=False) as clock:
        subscribe(hook.url)
        label_move(name="support-system", label=PRODUCTION, version=1, actor=cli, reason="first release")
        delivery = WebhookDelivery.objects.get()
        assert webhooks.deliver(delivery.pk) == "pending"
        delivery.refresh_from_db()
        assert (delivery.attempts, delivery.response_status, delivery.last_error) == (1, 500, "HTTP 500")
        assert delivery.next_attempt_at == start + timedelta(seconds=15)
        assert webhooks.due() == [] and webhooks.deliver(delivery.pk) == "skipped"  # not before its time

        clock.shift(timedelta(seconds=16))
        assert webhooks.due() == [delivery.pk]
        assert webhooks.deliver(delivery.pk) == "sent"
        assert webhooks.due() == []
    assert [status for _, _, status in hook.requests] == [500, 200]
    (_, first, _), (headers, second, _) = hook.requests
    assert first == second and valid_signature(headers, second)  # the same event, same id: receivers can dedupe
    assert len(hook.bodies) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status, delivery.last_error) == (
        DeliveryStatus.SENT,
        2,
        200,
        "",
    )


def test_a_first_attempt_the_broker_never_took_is_swept_up_after_a_grace_period(publish, cli):
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    publish("support-system", "Hi {{ name }}")
    subscribe("http://127.0.0.1:9/hooks")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        label_move(
            name="support-system", label=PRODUCTION, version=1, actor=cli, reason="first release"
        )  # never committed: never published
        assert webhooks.due() == []  # the after-commit publish has its grace period
        clock.shift(timedelta(seconds=11))
        assert webhooks.due() == [WebhookDelivery.objects.get().pk]


def test_retries_back_off_exponentially_for_about_a_day_then_give_up(publish, cli):
    delays = [webhooks.retry_delay(n) for n in range(1, webhooks.MAX_ATTEMPTS)]
    assert delays[:4] == [timedelta(seconds=s) for s in (15, 30, 60, 120)]
    assert max(delays) == timedelta(hours=2)
    assert timedelta(hours=24) <= sum(delays, timedelta()) < timedelta(hours=26)

    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    publish("support-system", "Hi {{ name }}")
    with Receiver(statuses=[503]) as hook:
        subscribe(hook.url)
        label_move(name="support-system", label=PRODUCTION, version=1, actor=cli, reason="first release")
        delivery = WebhookDelivery.objects.get()
        WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=webhooks.MAX_ATTEMPTS - 1)
        assert webhooks.deliver(delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryStatus.FAILED,
        webhooks.MAX_ATTEMPTS,
        None,
    )


def test_a_target_that_turns_internal_is_refused_at_delivery_and_not_retried(publish, cli, settings):
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    publish("support-system", "Hi {{ name }}")
    with Receiver() as hook:
        subscribe(hook.url)
        label_move(name="support-system", label=PRODUCTION, version=1, actor=cli, reason="first release")
        settings.ALERT_ALLOWED_HOSTS = []
        assert webhooks.deliver(WebhookDelivery.objects.get().pk) == "failed"
    assert hook.requests == []
    delivery = WebhookDelivery.objects.get()
    assert (
        delivery.last_error.startswith("refused: 127.0.0.1 is an internal address") and delivery.next_attempt_at is None
    )


def test_an_event_recorded_before_its_webhook_was_removed_is_not_sent(publish, cli):
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    publish("support-system", "Hi {{ name }}")
    with Receiver() as hook:
        subscription = subscribe(hook.url)
        label_move(name="support-system", label=PRODUCTION, version=1, actor=cli, reason="first release")
        delivery = WebhookDelivery.objects.get()
        WebhookSubscription.objects.filter(pk=subscription.pk).update(
            removed_at=timezone.now()
        )  # as if removed meanwhile
        assert webhooks.deliver(delivery.pk) == "failed"
        label_move(name="support-system", label="staging", version=1, actor=cli, reason="staging too")
    assert hook.requests == [] and WebhookDelivery.objects.count() == 1


def test_the_api_test_event_reaches_only_that_subscription(api_as):
    with Receiver() as hook, Receiver() as other:
        subscription = subscribe(hook.url, events=["prompt.retired"])
        subscribe(other.url, events=["prompt.retired"])
        r = api_as("admin").post_json(f"/api/v1/webhooks/{subscription.pk}/test")
        assert r.status_code == 202
        assert r.json()["event"] == "webhook.test" and r.json()["prompt"] is None
        delivery = WebhookDelivery.objects.get()
        assert delivery.subscription == subscription and str(delivery.event_id) == r.json()["id"]
        assert webhooks.deliver(delivery.pk) == "sent"
    assert json.loads(hook.requests[0][1]) == r.json() and other.requests == []


# --- dashboard -------------------------------------------------------------------------


def test_admins_manage_webhooks_in_the_dashboard(client, admin_user, deployer):
    client.login(username=deployer.username, password=PASSWORD)
    assert client.get(reverse("rollout:webhooks")).status_code == 403
    assert (
        client.post(
            reverse("rollout:webhooks"), {"url": "http://127.0.0.1:9/", "events": ["label.moved"], "secret": SECRET}
        ).status_code
        == 403
    )

    client.login(username=admin_user.username, password=PASSWORD)
    page = client.get(reverse("rollout:webhooks"))
    assert page.status_code == 200 and len(page.context["form"]["secret"].value()) == 64  # a fresh secret to copy
    r = client.post(
        reverse("rollout:webhooks"),
        {"url": "http://10.0.0.5/hooks", "events": ["label.moved"], "prompts": "", "secret": SECRET},
    )
    assert r.status_code == 200 and "internal address" in str(r.context["form"].errors["url"])
    r = client.post(
        reverse("rollout:webhooks"),
        {
            "url": "http://127.0.0.1:9/hooks",
            "events": ["label.moved", "review.decided"],
            "prompts": "support-system, billing-system",
            "secret": SECRET,
        },
    )
    assert r.status_code == 302
    subscription = WebhookSubscription.objects.get()
    assert (subscription.events, subscription.prompts, subscription.created_by) == (
        ["review.decided", "label.moved"],
        ["billing-system", "support-system"],
        admin_user,
    )
    page = client.get(reverse("rollout:webhooks"))
    assert SECRET not in page.content.decode()

    assert client.post(reverse("rollout:webhook-test", args=[subscription.pk])).status_code == 302
    delivery = WebhookDelivery.objects.select_related("event").get()
    assert (delivery.event.event, delivery.status, delivery.event.data["actor"]) == (
        "webhook.test",
        DeliveryStatus.PENDING,
        "ada",
    )
    assert "webhook.test" in client.get(reverse("rollout:webhooks")).content.decode()  # the delivery log

    assert client.post(reverse("rollout:webhook-remove", args=[subscription.pk])).status_code == 302
    assert not WebhookSubscription.objects.active().exists()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == (
        DeliveryStatus.FAILED,
        "the webhook was removed",
    )  # its retries stop
    assert "webhook.test" in client.get(reverse("rollout:webhooks")).content.decode()  # the log stays


def test_the_readme_signature_check_accepts_a_real_delivery_and_refuses_a_changed_body(api_as):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text().split("## Webhooks", 1)[1]
    namespace: dict = {}
    exec(compile(re.search(r"```python\n(.*?)```", readme, re.S)[1], "README.md", "exec"), namespace)
    with Receiver() as hook:
        subscription = subscribe(hook.url)
        api_as("admin").post_json(f"/api/v1/webhooks/{subscription.pk}/test")
        assert webhooks.deliver(WebhookDelivery.objects.get().pk) == "sent"
    [(headers, raw, _)] = hook.requests
    assert namespace["verified"](raw, headers["X-Promptreg-Signature"], SECRET)
    assert not namespace["verified"](raw.replace(b"promptreg", b"evil"), headers["X-Promptreg-Signature"], SECRET)
