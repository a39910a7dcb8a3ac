"""Quality monitors: what they watch, their configuration and run state, and each check's outcome."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from experiments.models import Direction, Experiment, ExperimentState
from promptreg.models import PRODUCTION, Prompt, PromptVersion

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


# A monitor's run state: changed by every check, so neither history-tracked nor edited in the admin.
RUN_STATE_FIELDS = (
    "state",
    "watched_version",
    "failure_streak",
    "inconclusive_streak",
    "next_check_at",
    "last_checked_at",
)


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

    history = HistoricalRecords(excluded_fields=list(RUN_STATE_FIELDS))

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
