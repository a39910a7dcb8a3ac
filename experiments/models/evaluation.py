"""Golden datasets and evaluation runs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from promptreg.models import Prompt, PromptVersion

__all__ = [
    "Dataset",
    "Case",
    "PromptEvalSettings",
    "RunState",
    "FINISHED_STATES",
    "EvalRun",
    "EvalResult",
    "QUALITY_SCORE",
]

QUALITY_SCORE = "quality_score"


class Dataset(models.Model):
    """Golden examples plus the scorers that grade a version's outputs on them.

    `scorers` is a list of specs as the API takes them: a scorer name, or an
    object with `name` and its options (see experiments/scorers.py).
    `primary_metric` empty means `quality_score` is the mean of all scorers.
    """

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    scorers = models.JSONField(default=list)
    primary_metric = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def active_cases(self) -> models.QuerySet[Case]:
        return self.cases.filter(removed_at__isnull=True).order_by("position", "id")


class Case(models.Model):
    """One golden example. Removing a case hides it (`removed_at`) so past results keep their case."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="cases")
    position = models.PositiveIntegerField(default=0)
    variables = models.JSONField(default=dict)
    expected = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["dataset", "position", "id"]

    def __str__(self) -> str:
        return f"{self.dataset.name} case {self.position}"


class PromptEvalSettings(models.Model):
    """Per-prompt evaluation settings: the golden dataset its versions are judged on."""

    prompt = models.OneToOneField(Prompt, on_delete=models.CASCADE, related_name="eval_settings")
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    alpha = models.FloatField(default=0.05)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "prompt evaluation settings"

    def __str__(self) -> str:
        return f"{self.prompt.name}: {self.dataset or 'no dataset'}"


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATES = (RunState.DONE, RunState.FAILED, RunState.CANCELLED)


class EvalRun(models.Model):
    """One version run over one dataset. The case list is fixed when the run is created.

    State moves by conditional UPDATEs (see experiments/runner.py): a
    worker claims a queued run, keeps `heartbeat_at` fresh, and another worker
    may take over a run whose heartbeat went stale.
    """

    version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="eval_runs")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="runs")
    baseline = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=12, choices=RunState.choices, default=RunState.QUEUED, db_index=True)
    case_ids = models.JSONField(default=list)
    scorers = models.JSONField(default=list)
    primary_metric = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=200, blank=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=64, blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_via = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the broker took the run's task; empty: beat queues it."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["version", "dataset", "state"])]

    def __str__(self) -> str:
        return f"run {self.pk}: {self.version} on {self.dataset.name}"

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 100


class EvalResult(models.Model):  # noqa: DJ008 — shown only through its parent's pages; no __str__ by design
    """One case's output and scores in one run; at most one per (run, case)."""

    run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="results")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="+")
    output = models.TextField(blank=True)
    scores = models.JSONField(default=dict)
    latency_ms = models.FloatField(default=0)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(
        blank=True, help_text="Why a scorer could not grade this output (it scored 0), e.g. a regex out of time."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "case__position", "case_id"]
        constraints = [models.UniqueConstraint(fields=["run", "case"], name="unique_result_per_run_case")]
