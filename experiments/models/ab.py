"""Online A/B experiments, canaries and the scores app servers post.

A `Score` row is one metric value (a posted score with three metrics is three
rows), so SQL aggregates stay simple. Experiment analysis never scans scores:
ingestion keeps running sums per session (`ExperimentSession`) and per variant
(`ExperimentTotal`, over session means: the session is the unit of
randomisation), so reading an analysis costs the same at 10k or 10M scores.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from promptreg.models import ActorNamed, Prompt, PromptVersion

__all__ = [
    "CONTROL",
    "TREATMENT",
    "VARIANTS",
    "Direction",
    "AnalysisSnapshot",
    "Experiment",
    "ExperimentAction",
    "ExperimentEvent",
    "ExperimentKind",
    "ExperimentMode",
    "ExperimentSession",
    "ExperimentState",
    "ExperimentTotal",
    "MetricKind",
    "Score",
    "assign_variant",
    "bucket_of",
]

CONTROL = "control"
TREATMENT = "treatment"
VARIANTS = (CONTROL, TREATMENT)
BUCKETS = 10_000


def bucket_of(session_id: str, experiment_id: int) -> float:
    """The team's assignment hash: a number in [0, 1) fixed per (session, experiment)."""
    digest = hashlib.sha256(f"{session_id}:{experiment_id}".encode()).hexdigest()
    return int(digest, 16) % BUCKETS / BUCKETS


def assign_variant(session_id: str, experiment_id: int, traffic_fraction: float) -> str:
    """Treatment when the bucket is below the fraction. Raising the fraction only
    adds sessions to treatment: nobody already in treatment moves back."""
    return TREATMENT if bucket_of(session_id, experiment_id) < traffic_fraction else CONTROL


class ExperimentState(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    CONCLUDED = "concluded", "Concluded"


class ExperimentMode(models.TextChoices):
    FIXED = "fixed", "Fixed horizon (look once, at the planned sample size)"
    SEQUENTIAL = "sequential", "Sequential (always valid: look as often as you like)"


class ExperimentKind(models.TextChoices):
    EXPERIMENT = "experiment", "A/B experiment"
    CANARY = "canary", "Canary rollout"


class MetricKind(models.TextChoices):
    MEAN = "mean", "Mean of a numeric score"
    PROPORTION = "proportion", "Proportion of 0/1 outcomes"


class Direction(models.TextChoices):
    HIGHER = "higher_is_better", "Higher is better"
    LOWER = "lower_is_better", "Lower is better"


# Fields fixed at start: changing the hypothesis after seeing data is p-hacking.
LOCKED_FIELDS = (
    "prompt_id",
    "label",
    "control_version_id",
    "treatment_version_id",
    "primary_metric",
    "primary_direction",
    "primary_kind",
    "guardrails",
    "alpha",
    "mode",
    "minimum_detectable_effect",
    "min_samples_per_variant",
)


class ExperimentQuerySet(models.QuerySet["Experiment"]):
    def running(self) -> ExperimentQuerySet:
        return self.filter(state=ExperimentState.RUNNING)


class Experiment(models.Model):
    """A pre-registered comparison of two versions of one prompt behind one label."""

    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="experiments")
    label = models.CharField(max_length=63, default="production")
    kind = models.CharField(max_length=12, choices=ExperimentKind.choices, default=ExperimentKind.EXPERIMENT)
    hypothesis = models.TextField(blank=True)
    control_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    treatment_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    traffic_fraction = models.FloatField(help_text="Share of sessions that get the treatment, 0 < f < 1.")
    primary_metric = models.CharField(max_length=64)
    primary_direction = models.CharField(max_length=20, choices=Direction.choices, default=Direction.HIGHER)
    primary_kind = models.CharField(max_length=12, choices=MetricKind.choices, default=MetricKind.MEAN)
    # [{"metric", "direction", "margin"}]: margins are absolute, in the metric's own units.
    guardrails = models.JSONField(default=list, blank=True)
    alpha = models.FloatField(default=0.05)
    power = models.FloatField(default=0.8)
    # Smallest absolute change of the primary metric worth detecting; with the
    # baseline standard deviation it sets the required sample size.
    minimum_detectable_effect = models.FloatField(null=True, blank=True)
    baseline_sd = models.FloatField(null=True, blank=True)
    min_samples_per_variant = models.PositiveIntegerField(default=100)
    min_runtime = models.DurationField(default=timedelta(0))
    mode = models.CharField(max_length=12, choices=ExperimentMode.choices, default=ExperimentMode.SEQUENTIAL)
    state = models.CharField(max_length=12, choices=ExperimentState.choices, default=ExperimentState.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_key = models.ForeignKey(
        "promptreg.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.TextField(blank=True)
    shipped_move = models.ForeignKey(
        "promptreg.LabelMove", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    history = HistoricalRecords()

    objects = ExperimentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["prompt", "label"], condition=Q(state="running"), name="one_running_experiment_per_label"
            ),
            models.CheckConstraint(
                condition=Q(traffic_fraction__gt=0) & Q(traffic_fraction__lt=1), name="experiment_fraction_in_0_1"
            ),
            models.CheckConstraint(condition=Q(alpha__gt=0) & Q(alpha__lt=0.5), name="experiment_alpha_range"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} on {self.prompt.name}@{self.label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            stored = Experiment.objects.filter(pk=self.pk).values("state", *LOCKED_FIELDS).first()
            if stored and stored["state"] != ExperimentState.DRAFT:
                changed = [f for f in LOCKED_FIELDS if stored[f] != getattr(self, f)]
                if changed:
                    raise ValidationError(f"Locked since the experiment started: {', '.join(changed)}.")
        super().save(*args, **kwargs)

    def bucket(self, session_id: str) -> float:
        return bucket_of(session_id, self.pk)

    def assign(self, session_id: str) -> str:
        """`control` or `treatment` for this session; stable for the life of the experiment."""
        return assign_variant(session_id, self.pk, self.traffic_fraction)

    def version_for(self, variant: str) -> PromptVersion:
        return self.treatment_version if variant == TREATMENT else self.control_version

    def version_id_for(self, variant: str) -> int:
        return self.treatment_version_id if variant == TREATMENT else self.control_version_id

    @property
    def metrics(self) -> list[str]:
        """Primary metric first, then the guardrails."""
        names = [self.primary_metric]
        names += [g["metric"] for g in self.guardrails if g["metric"] not in names]
        return names

    @property
    def runtime(self) -> timedelta:
        if self.started_at is None:
            return timedelta(0)
        return (self.ended_at or timezone.now()) - self.started_at


class ExperimentAction(models.TextChoices):
    START = "start", "Started"
    STOP = "stop", "Stopped"
    SHIP = "ship", "Shipped"
    CONCLUDE = "conclude", "Concluded (control kept)"


class ExperimentEvent(ActorNamed, models.Model):
    """A traffic change an experiment or canary made (start, stop, ship, conclusion): who, when,
    why, through what, and the treatment's share of the label's traffic afterwards. Append-only;
    the prompt's audit trail and the on-call deployment timeline read it beside the label moves."""

    experiment = models.ForeignKey(Experiment, on_delete=models.PROTECT, related_name="events")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="experiment_events")
    label = models.CharField(max_length=63)
    action = models.CharField(max_length=12, choices=ExperimentAction.choices)
    control_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    treatment_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    treatment_share = models.FloatField(
        help_text="Share of the label's traffic on the treatment after this event (0 to 1)."
    )
    decision = models.CharField(max_length=32, blank=True, help_text="The analysis decision when it happened.")
    is_override = models.BooleanField(default=False)
    bypassed = models.JSONField(default=list, blank=True)
    via = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey("promptreg.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["prompt", "created_at"], name="experiment_event_prompt_time")]

    def __str__(self) -> str:
        return self.title

    @property
    def title(self) -> str:
        kind = "Canary" if self.experiment.kind == ExperimentKind.CANARY else "Experiment"
        what = f"{kind} #{self.experiment_id} {self.get_action_display().lower()} on {self.label}"
        versions = f"v{self.control_version.number} / v{self.treatment_version.number}"
        text = f"{what}: {versions}, {self.treatment_share:.2%} of traffic on v{self.treatment_version.number}"
        if self.decision:
            text += f" (analysis: {self.decision})"
        if self.is_override:
            text += " · override, bypassed: " + "; ".join(self.bypassed)
        return text


class Score(models.Model):
    """One metric value posted by an app server (`POST /api/v1/scores`).

    `client_id` is the id the client sent; with `metric` it makes a re-post a no-op.
    """

    # Ingestion checks that the prompt, version and experiment exist before it writes, and
    # the ORM's PROTECT still guards deletes: no database-level constraint, whose deferred
    # per-row checks at commit cost as much as the insert itself.
    client_id = models.CharField(max_length=100)
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False)
    version = models.ForeignKey(
        PromptVersion, on_delete=models.PROTECT, related_name="scores", db_index=False, db_constraint=False
    )
    session_id = models.CharField(max_length=200, blank=True)
    experiment = models.ForeignKey(
        Experiment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="scores",
        db_index=False,
        db_constraint=False,
    )
    variant = models.CharField(max_length=12, blank=True)
    metric = models.CharField(max_length=64)
    value = models.FloatField()
    timestamp = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client_id", "metric"], name="score_idempotency")]
        indexes = [
            # monitors: values of metric M for version V in the last W minutes
            models.Index(
                fields=["version", "metric", "timestamp"], include=["value"], name="score_version_metric_time"
            ),
            # experiments: per-session aggregates (rebuilding the running sums; ingestion keeps them)
            models.Index(fields=["experiment", "metric", "session_id"], name="score_experiment_session"),
        ]

    def __str__(self) -> str:
        return f"{self.metric}={self.value} for v{self.version_id} ({self.client_id})"


class ExperimentSession(models.Model):  # noqa: DJ008 — shown only through its parent's pages; no __str__ by design
    """Running sum of one metric for one session of an experiment (the unit of analysis)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=64)
    session_id = models.CharField(max_length=200)
    variant = models.CharField(max_length=12)
    n = models.PositiveIntegerField(default=0)
    total = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "metric", "session_id"], name="experiment_session_metric")
        ]

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0


class ExperimentTotal(models.Model):  # noqa: DJ008 — shown only through its parent's pages; no __str__ by design
    """Sufficient statistics of session means per (experiment, variant, metric):
    sessions, Σ mean, Σ mean². Kept current by ingestion with atomic increments."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="totals")
    variant = models.CharField(max_length=12)
    metric = models.CharField(max_length=64)
    sessions = models.BigIntegerField(default=0)
    sum = models.FloatField(default=0.0)
    sum_sq = models.FloatField(default=0.0)
    scores = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "variant", "metric"], name="experiment_total_key")]


class AnalysisSnapshot(models.Model):  # noqa: DJ008 — shown only through its parent's pages; no __str__ by design
    """An analysis as computed at one moment: the dashboard's time series and the decision log."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="snapshots")
    computed_at = models.DateTimeField(default=timezone.now)
    decision = models.CharField(max_length=32)
    result = models.JSONField()

    class Meta:
        ordering = ["experiment", "computed_at", "id"]
        indexes = [models.Index(fields=["experiment", "computed_at"], name="snapshot_experiment_time")]
