"""Alerts: recorded once, delivered to every channel that wants their severity.

Delivery runs in a Celery task (`rollout.tasks.deliver_alert`) queued after
commit, so an alert about a rollback that was rolled back itself is never sent,
and a slow webhook never holds a monitor's transaction open.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail

from promptreg import broker
from promptreg.gates import protected_labels
from promptreg.models import LabelMove, MoveVia
from rollout import outbound
from rollout.models import (
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertKind,
    ChannelKind,
    Monitor,
    RollbackIncident,
    Severity,
)

WEBHOOK_TIMEOUT_SECONDS = 10
_COLOURS = {"info": "#2f5bd3", "warning": "#a86400", "critical": "#b42318"}


def raise_alert(
    kind: str,
    severity: str,
    title: str,
    text: str,
    *,
    monitor: Monitor | None = None,
    incident: RollbackIncident | None = None,
    move: LabelMove | None = None,
) -> Alert:
    """Record an alert and queue one delivery per interested channel."""
    from rollout.tasks import deliver_alert

    alert = Alert.objects.create(
        kind=kind, severity=severity, title=title[:300], text=text, monitor=monitor, incident=incident, move=move
    )
    for channel in AlertChannel.objects.filter(enabled=True):
        if channel.wants(severity):
            delivery = AlertDelivery.objects.create(alert=alert, channel=channel)
            broker.enqueue_on_commit(deliver_alert, delivery)
    return alert


def webhook_payload(alert: Alert) -> dict:
    """Slack's incoming-webhook format (`text` plus one attachment); Mattermost and others accept it too."""
    prompt = (
        alert.monitor.prompt.name
        if alert.monitor is not None
        else alert.move.prompt.name
        if alert.move is not None
        else None
    )
    return {
        "text": f"[{alert.severity.upper()}] {alert.title}",
        "attachments": [{"color": _COLOURS[alert.severity], "title": alert.title, "text": alert.text}],
        "promptreg": {
            "alert": alert.id,
            "kind": alert.kind,
            "severity": alert.severity,
            "prompt": prompt,
            "incident": alert.incident_id,
        },
    }


def send(delivery: AlertDelivery) -> None:
    """Deliver once; raises on failure so the task can retry with backoff."""
    alert, channel = delivery.alert, delivery.channel
    if channel.kind == ChannelKind.WEBHOOK:
        response = outbound.post_json(channel.target, webhook_payload(alert), timeout=WEBHOOK_TIMEOUT_SECONDS)
        response.raise_for_status()
    else:
        send_mail(
            f"[promptreg {alert.severity}] {alert.title}", alert.text, settings.DEFAULT_FROM_EMAIL, channel.addresses
        )


def rollback_alert(move: LabelMove) -> Alert | None:
    """Tell the channels about a rollback of a protected label made by a person or a script (the
    team's emergency practice): who, from → to, why. Automatic rollbacks alert from their monitor."""
    if move.via == MoveVia.AUTO_ROLLBACK or move.label not in protected_labels(move.prompt.prompt_type):
        return None
    from_version = move.from_version
    assert from_version is not None, "a rollback leaves a version"
    title = (
        f"{move.prompt.name}: {move.label} rolled back from v{from_version.number} to v{move.to_version.number} "
        f"by {move.actor_name}"
    )
    text = (
        f"Who: {move.actor_name} ({move.get_via_display().lower()})\n"
        f"What: {move.label} v{from_version.number} → v{move.to_version.number}\n"
        f"Why: {move.reason}"
    )
    return raise_alert(AlertKind.MANUAL_ROLLBACK, Severity.WARNING, title, text, move=move)
