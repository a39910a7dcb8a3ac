"""Alert channels, alerts and their deliveries."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from promptreg.models import LabelMove
from rollout.models.incident import RollbackIncident
from rollout.models.monitor import Monitor
from rollout.outbound import TargetRefused, check_target


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "Slack-compatible webhook"
    EMAIL = "email", "E-mail"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK: dict[str, int] = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertChannel(models.Model):
    """Where alerts go: a webhook URL or a comma-separated list of e-mail addresses."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    target = models.TextField(help_text="Webhook URL, or e-mail addresses separated by commas.")
    min_severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self) -> None:
        from django.core.validators import URLValidator, validate_email

        try:
            if self.kind == ChannelKind.WEBHOOK:
                URLValidator(schemes=["http", "https"])(self.target.strip())
                check_target(self.target)
            else:
                for address in self.addresses:
                    validate_email(address)
                if not self.addresses:
                    raise ValidationError("Give at least one e-mail address.")
        except ValidationError as exc:
            raise ValidationError({"target": exc.messages}) from None
        except TargetRefused as exc:
            raise ValidationError({"target": [str(exc)]}) from None

    @property
    def addresses(self) -> list[str]:
        return [a.strip() for a in self.target.split(",") if a.strip()]

    def wants(self, severity: str) -> bool:
        return self.enabled and SEVERITY_RANK[severity] >= SEVERITY_RANK[self.min_severity]


class AlertKind(models.TextChoices):
    ROLLBACK = "rollback", "Automatic rollback"
    MANUAL_ROLLBACK = "manual_rollback", "Rollback by a person or a script"
    CANARY_ROLLED_BACK = "canary_rolled_back", "Canary rolled back automatically"
    ROLLBACK_FAILED = "rollback_failed", "Automatic rollback failed"
    ROLLBACK_HELD = "rollback_held", "Rollback held back"
    INCONCLUSIVE = "inconclusive", "Monitor inconclusive"


class Alert(models.Model):
    """One thing worth telling people; delivered once per channel."""

    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    monitor = models.ForeignKey(Monitor, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    incident = models.ForeignKey(
        RollbackIncident, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    # The label move an alert is about (a rollback by a person or a script: it has no monitor).
    move = models.ForeignKey(LabelMove, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField(max_length=300)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.title}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class AlertDelivery(models.Model):  # noqa: DJ008 — shown only through its parent's pages; no __str__ by design
    """The notification log: one alert to one channel, with its attempts."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the broker took the delivery task; empty: beat queues it."
    )
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["alert", "channel"], name="one_delivery_per_channel")]
