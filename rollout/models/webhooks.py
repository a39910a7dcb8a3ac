"""Webhook subscriptions, the events they are sent and each delivery."""

from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from rollout.models.alerts import DeliveryStatus


class WebhookEventType(models.TextChoices):
    VERSION_CREATED = "version.created", "A version was published"
    REVIEW_DECIDED = "review.decided", "A reviewer approved or requested changes"
    LABEL_MOVED = "label.moved", "A label moved (deploys and rollbacks)"
    EXPERIMENT_STARTED = "experiment.started", "An experiment or canary started"
    EXPERIMENT_STOPPED = "experiment.stopped", "An experiment or canary stopped (traffic back to the control)"
    EXPERIMENT_SHIPPED = "experiment.shipped", "An experiment's treatment was shipped"
    PROMPT_RETIRED = "prompt.retired", "A prompt was retired"
    PROMPT_RESTORED = "prompt.restored", "A prompt was restored"


TEST_EVENT = "webhook.test"  # sent by "Send test event" to one subscription, whatever its event list


class WebhookSubscriptionQuerySet(models.QuerySet):
    def active(self) -> WebhookSubscriptionQuerySet:
        return self.filter(removed_at__isnull=True)


class WebhookSubscription(models.Model):
    """Where prompt events go: a URL, the events it wants, optionally only some prompts' events.

    The secret signs every body (HMAC-SHA256), so it is kept as given, not hashed, and
    shown only to whoever creates the subscription; the history leaves it out.
    """

    url = models.URLField(max_length=2000)
    events = models.JSONField(help_text="Event names, e.g. ['label.moved'].")
    prompts = models.JSONField(null=True, blank=True, help_text="Prompt names; null for every prompt.")
    secret = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_key = models.ForeignKey(
        "promptreg.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Removal keeps the row (its delivery log stays readable, and an action recording an event
    # concurrently never fails on a vanished foreign key) but drops the secret.
    removed_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(excluded_fields=["secret"])

    objects = WebhookSubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"webhook {self.pk} → {self.url}"

    def wants(self, event: str, prompt_name: str) -> bool:
        return event in self.events and (self.prompts is None or prompt_name in self.prompts)

    @property
    def creator(self) -> str:
        user, key = self.created_by, self.created_by_key  # None without a query when unset
        if user is not None:
            return user.get_username()
        return f"API key {key.name}" if key is not None else "promptreg"

    def to_dict(self) -> dict:
        return {
            "id": self.pk,
            "url": self.url,
            "events": self.events,
            "prompts": self.prompts,
            "created_by": self.creator,
            "created_at": self.created_at.isoformat(),
        }


class WebhookEvent(models.Model):
    """One event, recorded in the transaction of the action it reports; its id lets receivers
    drop a repeated delivery (delivery is at least once)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event = models.CharField(max_length=40)
    prompt = models.CharField(max_length=200, blank=True)
    data = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event} {self.prompt or ''}".strip()

    def envelope(self) -> dict:
        return {
            "id": str(self.id),
            "event": self.event,
            "created_at": self.created_at,
            "prompt": self.prompt or None,
            "data": self.data,
        }

    def body(self) -> bytes:
        """The exact bytes sent (and signed); the same on every attempt."""
        return json.dumps(self.envelope(), separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder).encode()


class WebhookDelivery(models.Model):
    """The delivery log: one event to one subscription, its attempts and the last answer."""

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, null=True, blank=True)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_snippet = models.TextField(blank=True)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["event", "subscription"], name="one_delivery_per_subscription")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} → webhook {self.subscription_id}: {self.status}"
