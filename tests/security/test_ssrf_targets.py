"""Webhook and alert targets never reach internal addresses: refused at save, re-checked at delivery on the
address the name resolves to then (DNS rebinding), unless listed in ALERT_ALLOWED_HOSTS."""

from __future__ import annotations

import socket

import pytest
from django.urls import reverse

from rollout import outbound
from rollout.models import AlertChannel, AlertDelivery, DeliveryStatus
from rollout.tasks import deliver_alert
from tests.conftest import PASSWORD
from tests.rollout.test_alerts import raise_rollback_alert
from tests.rollout.webhook_receiver import Receiver

INTERNAL = [
    "http://127.0.0.1:9/hook",
    "http://localhost/hook",
    "http://app.localhost/hook",
    "http://10.0.0.5/hook",
    "http://192.168.1.1/hook",
    "http://172.16.0.1/hook",
    "http://100.64.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fd00:ec2::254]/hook",
]


def add_channel(client, target: str):
    return client.post(
        reverse("rollout:channels"),
        {"name": "ops", "kind": "webhook", "target": target, "min_severity": "warning", "enabled": "on"},
    )


@pytest.mark.parametrize("target", INTERNAL)
def test_internal_targets_are_refused_at_save(client, admin_user, settings, target):
    settings.ALERT_ALLOWED_HOSTS = []
    client.login(username=admin_user.username, password=PASSWORD)
    response = add_channel(client, target)
    assert response.status_code == 200
    assert "ALERT_ALLOWED_HOSTS" in " ".join(response.context["form"].errors["target"])
    assert not AlertChannel.objects.exists()


@pytest.mark.parametrize("target", ["http://2130706433/hook", "http://0/hook", "http://0x7f.1/hook"])
def test_numeric_spellings_of_internal_addresses_are_refused_on_what_they_resolve_to(settings, target):
    settings.ALERT_ALLOWED_HOSTS = []
    with pytest.raises(outbound.TargetRefused, match="internal address"):
        outbound.check_target(target)


def test_an_allowed_host_or_network_is_accepted(client, admin_user, settings):
    settings.ALERT_ALLOWED_HOSTS = ["127.0.0.1", "10.2.0.0/16"]
    client.login(username=admin_user.username, password=PASSWORD)
    assert add_channel(client, "http://127.0.0.1:9/hook").status_code == 302
    AlertChannel.objects.all().delete()
    assert add_channel(client, "http://10.2.3.4/hook").status_code == 302
    AlertChannel.objects.all().delete()
    assert add_channel(client, "http://10.3.0.1/hook").status_code == 200
    assert not AlertChannel.objects.exists()


@pytest.fixture
def dns(monkeypatch):
    """Answers for names ending in `.test`, one per lookup (the last one repeats); other names resolve as usual."""
    real = socket.getaddrinfo
    answers: dict[str, list[str]] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if not host.endswith(".test"):
            return real(host, port, *args, **kwargs)
        queue = answers[host]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_a_name_rebound_to_loopback_after_save_is_refused_at_delivery(
    client, admin_user, settings, dns, django_capture_on_commit_callbacks
):
    settings.ALERT_ALLOWED_HOSTS = []
    dns["rebind.test"] = ["93.184.216.34", "127.0.0.1"]  # public when saved, loopback afterwards
    client.login(username=admin_user.username, password=PASSWORD)
    with Receiver() as hook:
        port = hook.server.server_address[1]
        assert add_channel(client, f"http://rebind.test:{port}/hooks/alerts").status_code == 302
        with django_capture_on_commit_callbacks(execute=False):
            raise_rollback_alert()
        delivery = AlertDelivery.objects.get()
        deliver_alert.apply(args=[delivery.id])
        assert not hook.bodies
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1  # refused, not retried
    assert "rebind.test (127.0.0.1) is an internal address" in delivery.last_error


def test_delivery_connects_to_the_address_that_was_checked(settings, db, dns, django_capture_on_commit_callbacks):
    """No second lookup between the check and the connection: the name's next answer (127.0.0.2, where
    nothing listens) is never used, and the allowed receiver gets its alert."""
    settings.ALERT_ALLOWED_HOSTS = ["hooks.test"]
    dns["hooks.test"] = ["127.0.0.1", "127.0.0.2"]
    with Receiver() as hook:
        AlertChannel.objects.create(
            name="ops", kind="webhook", target=f"http://hooks.test:{hook.server.server_address[1]}/hooks/alerts"
        )
        with django_capture_on_commit_callbacks(execute=False):
            raise_rollback_alert()
        assert deliver_alert.apply(args=[AlertDelivery.objects.get().id]).get() == "sent"
        assert hook.bodies[0]["text"].startswith("[WARNING]")
