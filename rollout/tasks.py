"""Celery tasks: the monitor dispatcher beat runs, one check per monitor, alert and webhook delivery."""

from __future__ import annotations

import logging

import httpx
from celery import shared_task
from django.db.models import F
from django.utils import timezone

from promptreg import broker
from rollout import alerts, monitoring, serving, webhooks
from rollout.models import AlertDelivery, DeliveryStatus

log = logging.getLogger(__name__)


@shared_task(name="rollout.tasks.dispatch_monitors")
def dispatch_monitors() -> int:
    """Run by beat every few seconds: queue a check for every monitor whose interval has elapsed."""
    due = monitoring.claim_due()
    for monitor_id in due:
        check_monitor.delay(monitor_id)
    return len(due)


@shared_task(name="rollout.tasks.retry_invalidations")
def retry_invalidations() -> bool:
    """Run by beat: serving-cache invalidations and key verdicts that could not reach Redis, until they land."""
    return serving.invalidations_retry()


@shared_task(name="rollout.tasks.requeue_deliveries")
def requeue_deliveries() -> list[int]:
    """Run by beat: queue the alert deliveries whose task the broker did not take when the alert was raised."""
    return broker.requeue(
        AlertDelivery.objects.filter(status=DeliveryStatus.PENDING), deliver_alert, created="alert__created_at"
    )


@shared_task(name="rollout.tasks.check_monitor")
def check_monitor(monitor_id: int) -> str:
    check = monitoring.run_check(monitor_id)
    return check.outcome if check else "canary ended"


@shared_task(
    name="rollout.tasks.deliver_alert",
    bind=True,
    autoretry_for=(httpx.HTTPError, OSError),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=6,
)
def deliver_alert(self, delivery_id: int) -> str:
    """Send one alert to one channel; retried with exponential backoff, the last error kept in the log."""
    delivery = AlertDelivery.objects.select_related("alert__monitor__prompt", "channel").filter(pk=delivery_id).first()
    if delivery is None or delivery.status == DeliveryStatus.SENT:
        return "skipped"
    AlertDelivery.objects.filter(pk=delivery_id).update(attempts=F("attempts") + 1)
    try:
        alerts.send(delivery)
    except Exception as exc:
        final = self.request.retries >= self.max_retries or not isinstance(exc, (httpx.HTTPError, OSError))
        AlertDelivery.objects.filter(pk=delivery_id).update(
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            status=DeliveryStatus.FAILED if final else DeliveryStatus.PENDING,
        )
        log.warning("alert delivery %s failed (final=%s): %s", delivery_id, final, exc)
        raise
    AlertDelivery.objects.filter(pk=delivery_id).update(
        status=DeliveryStatus.SENT, sent_at=timezone.now(), last_error=""
    )
    return "sent"


@shared_task(name="rollout.tasks.deliver_webhook")
def deliver_webhook(delivery_id: int) -> str:
    """One attempt at one webhook delivery; a failure schedules the next in the database (see rollout.webhooks)."""
    return webhooks.deliver(delivery_id)


@shared_task(name="rollout.tasks.dispatch_webhooks")
def dispatch_webhooks() -> int:
    """Run by beat: queue the webhook deliveries whose (next) attempt is due."""
    ids = webhooks.due()
    webhooks.publish(ids)
    return len(ids)
