"""Alert channels and delivery: webhook JSON to a local receiver, e-mail, severity filter, retries with backoff."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from rollout import alerts
from rollout.models import AlertChannel, AlertDelivery, AlertKind, DeliveryStatus, Severity
from rollout.tasks import deliver_alert
from tests.conftest import PASSWORD
from tests.rollout.webhook_receiver import Receiver


@pytest.fixture
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from promptreg.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def raise_rollback_alert():
    return alerts.raise_alert(
        AlertKind.ROLLBACK, Severity.WARNING, "support-system: production rolled back", "v2 → v1: mean 0.4 < 0.6"
    )


def test_webhook_gets_slack_compatible_json(db, django_capture_on_commit_callbacks):
    with Receiver() as hook:
        AlertChannel.objects.create(name="ops", kind="webhook", target=hook.url)
        with django_capture_on_commit_callbacks() as callbacks:
            alert = raise_rollback_alert()
        delivery = AlertDelivery.objects.get()
        assert delivery.status == DeliveryStatus.PENDING and len(callbacks) == 1  # queued only after commit
        assert deliver_alert.apply(args=[delivery.id]).get() == "sent"
        body = hook.bodies[0]
    assert body["text"] == "[WARNING] support-system: production rolled back"
    assert body["attachments"][0]["text"] == "v2 → v1: mean 0.4 < 0.6"
    assert body["promptreg"]["alert"] == alert.id and body["promptreg"]["kind"] == "rollback"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.sent_at is not None) == (DeliveryStatus.SENT, 1, True)
    assert deliver_alert.apply(args=[delivery.id]).get() == "skipped"  # never twice


def test_email_channel_and_severity_filter(db):
    AlertChannel.objects.create(
        name="oncall-mail", kind="email", target="a@example.com, b@example.com", min_severity="warning"
    )
    AlertChannel.objects.create(name="pager", kind="email", target="pager@example.com", min_severity="critical")
    raise_rollback_alert()
    deliveries = AlertDelivery.objects.select_related("channel")
    assert [d.channel.name for d in deliveries] == ["oncall-mail"]
    deliver_alert.apply(args=[deliveries[0].id])
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["a@example.com", "b@example.com"]
    assert mail.outbox[0].subject == "[promptreg warning] support-system: production rolled back"


def test_failing_webhook_is_retried_with_backoff_then_recorded(db, eager):
    with Receiver(statuses=[500, 503]) as hook:
        AlertChannel.objects.create(name="ops", kind="webhook", target=hook.url)
        raise_rollback_alert()
        delivery = AlertDelivery.objects.get()
        deliver_alert.apply(args=[delivery.id])
        assert len(hook.bodies) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 3)
    assert deliver_alert.retry_backoff and deliver_alert.max_retries == 6


def test_a_dead_webhook_ends_failed_with_the_error(db, eager):
    with Receiver(statuses=[500] * 20) as hook:
        AlertChannel.objects.create(name="ops", kind="webhook", target=hook.url)
        raise_rollback_alert()
        delivery = AlertDelivery.objects.get()
        deliver_alert.apply(args=[delivery.id])
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 7)
    assert "500" in delivery.last_error


def test_only_admins_manage_channels_and_bad_targets_are_form_errors(client, admin_user, deployer):
    client.login(username=deployer.username, password=PASSWORD)
    assert client.get(reverse("rollout:channels")).status_code == 403
    assert (
        client.post(
            reverse("rollout:channels"), {"name": "x", "kind": "webhook", "target": "http://127.0.0.1:9/"}
        ).status_code
        == 403
    )
    client.login(username=admin_user.username, password=PASSWORD)
    r = client.post(
        reverse("rollout:channels"),
        {"name": "ops", "kind": "webhook", "target": "not a url", "min_severity": "warning", "enabled": "on"},
    )
    assert r.status_code == 200 and "target" in r.context["form"].errors
    r = client.post(
        reverse("rollout:channels"),
        {"name": "mail", "kind": "email", "target": "ops@example.com, nope", "min_severity": "warning"},
    )
    assert "target" in r.context["form"].errors
    assert not AlertChannel.objects.exists()
    r = client.post(
        reverse("rollout:channels"),
        {
            "name": "ops",
            "kind": "webhook",
            "target": "https://hooks.example.com/T000/B000",
            "min_severity": "critical",
            "enabled": "on",
        },
    )
    assert r.status_code == 302
    channel = AlertChannel.objects.get()
    assert (channel.kind, channel.min_severity, channel.history.count()) == ("webhook", "critical", 1)
    assert client.post(reverse("rollout:channel-delete", args=[channel.id])).status_code == 302
    assert not AlertChannel.objects.exists()
