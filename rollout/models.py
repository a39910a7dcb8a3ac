"""Quality monitors, their checks, automatic-rollback incidents, alerts, and webhook subscriptions and deliveries."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from experiments.models import Direction, Experiment, ExperimentState
from promptreg.models import PRODUCTION, LabelMove, Prompt, PromptVersion
from rollout.outbound import TargetRefused, check_target

MIN_INTERVAL_SECONDS = 1


class MetricSpec:
    """A metric a monitor can watch: its direction and, for scores in [0, 1], its bounds."""

    def __init__(self, name: str, label: str, direction: str, unit_interval: bool):
        self.name, self.label, self.direction, self.unit_interval = name, label, direction, unit_interval

    @property
    def higher_is_better(self) -> bool:
        return self.direction == Direction.HIGHER


METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        MetricSpec("quality_score", "Quality (evaluation score)", Direction.HIGHER, True),
        MetricSpec("user_satisfaction", "User satisfaction", Direction.HIGHER, True),
        MetricSpec("latency_ms", "Latency (ms)", Direction.LOWER, False),
        MetricSpec("cost_usd", "Cost per query (USD)", Direction.LOWER, False),
    )
}


class MonitorState(models.TextChoices):
    WAITING = "waiting", "Waiting for scores"
    HEALTHY = "healthy", "Healthy"
    FAILING = "failing", "Failing"
    ROLLED_BACK = "rolled_back", "Rolled back"
    NEEDS_HUMAN = "needs_human", "Needs a human"
    DISABLED = "disabled", "Disabled"


class MonitorQuerySet(models.QuerySet["Monitor"]):
    def of_labels(self) -> MonitorQuerySet:
        """Monitors configured for a label itself, not the ones they keep for canaries."""
        return self.filter(experiment__isnull=True)

    def of_label(self, prompt: Prompt | int, label: str = PRODUCTION) -> MonitorQuerySet:
        return self.of_labels().filter(prompt=prompt, label=label)

    def active(self) -> MonitorQuerySet:
        """Enabled monitors with something to watch: a label, or a canary that still runs."""
        return self.filter(Q(experiment__isnull=True) | Q(experiment__state=ExperimentState.RUNNING), enabled=True)


class Monitor(models.Model):
    """Rules that watch one label of one prompt (the production label unless told otherwise).

    A label's monitor also watches every canary on that label: for each running
    canary it keeps a canary monitor (`parent` = the label's monitor,
    `experiment` = the canary) with the same rules, which judges the canary's
    treatment against its concurrent control and, when it trips, concludes the
    canary instead of moving the label. Its rules follow the parent's
    (`monitor_configure` copies them).

    Config fields are history-tracked; the run state (streaks, next run) is not.
    """

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="monitors")
    label = models.CharField(max_length=63, default=PRODUCTION)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="canaries")
    experiment = models.OneToOneField(
        Experiment, null=True, blank=True, on_delete=models.CASCADE, related_name="canary_monitor"
    )
    metric = models.CharField(
        max_length=64, default="quality_score", choices=[(m.name, m.label) for m in METRICS.values()]
    )
    interval_seconds = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(MIN_INTERVAL_SECONDS), MaxValueValidator(86400)]
    )
    consecutive_failures = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    inconclusive_before_page = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(10000)]
    )
    cooldown_minutes = models.PositiveIntegerField(default=30, validators=[MaxValueValidator(7 * 24 * 60)])
    floor_enabled = models.BooleanField(default=True)
    floor_threshold = models.FloatField(null=True, blank=True)
    floor_window_minutes = models.FloatField(
        default=15, validators=[MinValueValidator(0.1), MaxValueValidator(7 * 24 * 60)]
    )
    floor_min_samples = models.PositiveIntegerField(default=20, validators=[MinValueValidator(1)])
    relative_enabled = models.BooleanField(default=True)
    relative_margin = models.FloatField(default=0.03, validators=[MinValueValidator(0), MaxValueValidator(1)])
    relative_alpha = models.FloatField(default=0.01, validators=[MinValueValidator(1e-9), MaxValueValidator(0.5)])
    relative_window_minutes = models.FloatField(
        default=15, validators=[MinValueValidator(0.1), MaxValueValidator(7 * 24 * 60)]
    )
    relative_min_samples = models.PositiveIntegerField(default=30, validators=[MinValueValidator(2)])
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    # Run state: which version the streaks belong to, and when the next run is due.
    state = models.CharField(max_length=20, choices=MonitorState.choices, default=MonitorState.WAITING)
    watched_version = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    failure_streak = models.PositiveIntegerField(default=0)
    inconclusive_streak = models.PositiveIntegerField(default=0)
    next_check_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(
        excluded_fields=[
            "state",
            "watched_version",
            "failure_streak",
            "inconclusive_streak",
            "next_check_at",
            "last_checked_at",
        ]
    )

    objects = MonitorQuerySet.as_manager()

    class Meta:
        ordering = ["prompt__name", "label", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["prompt", "label"], condition=Q(experiment__isnull=True), name="one_monitor_per_label"
            ),
            models.CheckConstraint(
                condition=Q(parent__isnull=True, experiment__isnull=True)
                | Q(parent__isnull=False, experiment__isnull=False),
                name="canary_monitor_has_parent_and_canary",
            ),
        ]

    def __str__(self) -> str:
        return f"monitor {self.watches} ({self.metric})"

    @property
    def watches(self) -> str:
        """What it watches, for people: `name@label`, or `name@label canary #N`."""
        canary = f" canary #{self.experiment_id}" if self.experiment_id else ""
        return f"{self.prompt.name}@{self.label}{canary}"

    @property
    def is_canary(self) -> bool:
        return self.experiment_id is not None

    @property
    def spec(self) -> MetricSpec:
        return METRICS[self.metric]

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.metric not in METRICS:
            errors["metric"] = f"Unknown metric '{self.metric}'; choose one of {', '.join(METRICS)}."
        if not self.floor_enabled and not self.relative_enabled:
            errors["floor_enabled"] = "Enable at least one rule (floor or relative)."
        if self.floor_enabled:
            if self.floor_threshold is None:
                errors["floor_threshold"] = "The floor rule needs a threshold."
            elif self.metric in METRICS and METRICS[self.metric].unit_interval and not 0 <= self.floor_threshold <= 1:
                errors["floor_threshold"] = (
                    f"{self.metric} lies in [0, 1]; the threshold must too (got {self.floor_threshold})."
                )
            elif self.floor_threshold < 0:
                errors["floor_threshold"] = "The threshold cannot be negative."
        if errors:
            raise ValidationError(errors)

    def configure(self, changes: dict) -> None:
        """Set config fields (unvalidated: callers `full_clean`); the state follows `enabled`, and the next check is
        now."""
        for name, value in changes.items():
            setattr(self, name, value)
        if not self.enabled:
            self.state = MonitorState.DISABLED
        elif self.state == MonitorState.DISABLED:
            self.state = MonitorState.WAITING
        self.next_check_at = timezone.now()

    def in_cooldown(self, now=None) -> bool:
        last = self.incidents.filter(move__isnull=False).order_by("-created_at").first()
        return bool(last and last.created_at > (now or timezone.now()) - timedelta(minutes=self.cooldown_minutes))

    def config_dict(self) -> dict:
        return {
            "metric": self.metric,
            "direction": self.spec.direction,
            "interval_seconds": self.interval_seconds,
            "consecutive_failures": self.consecutive_failures,
            "inconclusive_before_page": self.inconclusive_before_page,
            "cooldown_minutes": self.cooldown_minutes,
            "floor": {
                "threshold": self.floor_threshold,
                "window_minutes": self.floor_window_minutes,
                "min_samples": self.floor_min_samples,
            }
            if self.floor_enabled
            else None,
            "relative": {
                "margin": self.relative_margin,
                "alpha": self.relative_alpha,
                "window_minutes": self.relative_window_minutes,
                "min_samples": self.relative_min_samples,
            }
            if self.relative_enabled
            else None,
            "enabled": self.enabled,
        }

    def to_dict(self, checks: int = 10) -> dict:
        canary = None
        e = self.experiment  # set exactly for a canary's monitor
        if e is not None:
            canary = {
                "experiment": e.pk,
                "state": e.state,
                "version": e.treatment_version.number,
                "control_version": e.control_version.number,
                "traffic_fraction": e.traffic_fraction,
            }
        return {
            "prompt": self.prompt.name,
            "label": self.label,
            "canary": canary,
            **self.config_dict(),
            "state": self.state,
            "watched_version": self.watched_version.number if self.watched_version is not None else None,
            "failure_streak": self.failure_streak,
            "inconclusive_streak": self.inconclusive_streak,
            "last_checked_at": self.last_checked_at.isoformat() if self.last_checked_at else None,
            "checks": [c.to_dict() for c in self.checks.select_related("version")[:checks]],
            **({} if self.is_canary else {"canaries": [m.to_dict(checks) for m in self.canary_monitors()]}),
        }

    def canary_monitors(self) -> MonitorQuerySet:
        """The canary monitors this label monitor keeps for canaries that still run."""
        return self.canaries.filter(experiment__state=ExperimentState.RUNNING).select_related(
            "prompt", "watched_version", "experiment__control_version", "experiment__treatment_version"
        )


class Outcome(models.TextChoices):
    SUCCESSFUL = "successful", "Successful"
    FAILED = "failed", "Failed"
    INCONCLUSIVE = "inconclusive", "Inconclusive"
    ERROR = "error", "Error"


class CheckAction(models.TextChoices):
    NONE = "none", "None"
    ROLLED_BACK = "rolled_back", "Rolled back"
    ALREADY_HANDLED = "already_handled", "Already handled (label moved meanwhile)"
    ROLLBACK_FAILED = "rollback_failed", "Rollback failed"
    ROLLBACK_HELD = "rollback_held", "Rollback held back (cooldown or human decision)"
    PAGED = "paged", "Paged a human"


class CheckQuerySet(models.QuerySet["MonitorCheck"]):
    def latest_per_monitor(self, monitor_ids: list[int]) -> dict[int, MonitorCheck]:
        """{monitor id: its latest check}, in one query (each monitor's newest row, off the index)."""
        newest = (
            MonitorCheck.objects.filter(monitor=models.OuterRef("pk")).order_by("-created_at", "-id").values("id")[:1]
        )
        ids = Monitor.objects.filter(pk__in=monitor_ids).values(newest_id=models.Subquery(newest))
        return {check.monitor_id: check for check in self.filter(pk__in=ids).select_related("version")}


class MonitorCheck(models.Model):  # noqa: DJ008 — shown only through its parent's pages; no __str__ by design
    """One run of a monitor: its outcome, the evidence, and what it did."""

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="checks")
    version = models.ForeignKey(PromptVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    action = models.CharField(max_length=20, choices=CheckAction.choices, default=CheckAction.NONE)
    summary = models.TextField()
    evidence = models.JSONField(default=dict, blank=True)

    objects = CheckQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["monitor", "-created_at", "-id"], name="check_monitor_newest")]

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "at": self.created_at.isoformat(),
            "version": self.version.number if self.version is not None else None,
            "outcome": self.outcome,
            "action": self.action,
            "summary": self.summary,
            "evidence": self.evidence,
        }


class IncidentQuerySet(models.QuerySet["RollbackIncident"]):
    def unacknowledged(self) -> IncidentQuerySet:
        return self.filter(acknowledged_at__isnull=True)

    def for_display(self) -> IncidentQuerySet:
        """With what `headline` reads."""
        return self.select_related(
            "prompt", "from_version", "move__to_version", "experiment__control_version", "acknowledged_by"
        )


class RollbackIncident(models.Model):
    """An automatic rollback (or a failed attempt at one), shown in a banner until acknowledged.

    Of production, `move` is the label move that rolled back; of a canary,
    `experiment` is the canary that was concluded (all traffic back on its control).
    """

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="incidents")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="rollback_incidents")
    check_run = models.OneToOneField(MonitorCheck, on_delete=models.CASCADE, related_name="incident")
    from_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    move = models.OneToOneField(LabelMove, null=True, blank=True, on_delete=models.PROTECT, related_name="incident")
    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    reason = models.TextField()
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.headline

    def acknowledge(self, user) -> bool:
        """Mark seen; a conditional update, so two people clicking at once record the first."""
        changed = RollbackIncident.objects.filter(pk=self.pk, acknowledged_at__isnull=True).update(
            acknowledged_by=user, acknowledged_at=timezone.now()
        )
        return bool(changed)

    @property
    def succeeded(self) -> bool:
        return not self.error

    @property
    def headline(self) -> str:
        if self.experiment_id:
            what = f"{self.prompt.name}: canary of v{self.from_version.number} (canary #{self.experiment_id})"
            if self.succeeded:
                assert self.experiment is not None
                return f"{what} rolled back automatically; all traffic on v{self.experiment.control_version.number}"
            return f"{what}: automatic rollback FAILED — {self.error}"
        if self.succeeded:
            assert self.move is not None, "a production rollback that succeeded moved the label"
            return (
                f"{self.prompt.name}: production rolled back automatically from v{self.from_version.number} to "
                f"v{self.move.to_version.number}"
            )
        return f"{self.prompt.name}: automatic rollback from v{self.from_version.number} FAILED — {self.error}"


class PendingInvalidation(models.Model):
    """A prompt whose serving-cache invalidation could not reach Redis after a change; beat
    retries it (`serving.invalidations_retry`) until it lands, so cached answers from before
    a rollback do not live on for their whole TTL."""

    prompt_name = models.CharField(max_length=200, unique=True)
    since = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"pending invalidation of {self.prompt_name} since {self.since:%Y-%m-%d %H:%M:%S}"


class PendingKeyVerdict(models.Model):
    """An API key whose changed verdict (issued, scopes changed, revoked, deleted) has not reached
    Redis yet; retried with the prompts' `PendingInvalidation`s, and landed by every server
    process before it reads Redis again after a fault, so a revoked key is refused at once."""

    secret_hash = models.CharField(max_length=64, unique=True)
    since = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"pending key verdict {self.secret_hash[:8]}… since {self.since:%Y-%m-%d %H:%M:%S}"


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
