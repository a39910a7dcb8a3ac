"""Production samples: what a version was given and what it answered, posted with a score and kept for a while."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from promptreg.models import Prompt, PromptVersion

__all__ = ["Sample", "SamplingPolicy"]


class Sample(models.Model):
    """One served request: its variables and the output, stored with the score that carried it.

    `client_id` is the score's `id`; its metric values are the `Score` rows with that client id, so a sample
    has no copy of its scores. Like scores, no database-level foreign keys (ingestion checks the version
    exists; the ORM cascades deletes).
    """

    client_id = models.CharField(max_length=100, unique=True)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    version = models.ForeignKey(
        PromptVersion, on_delete=models.CASCADE, related_name="samples", db_index=False, db_constraint=False
    )
    variables = models.JSONField(default=dict)
    output = models.TextField(blank=True)
    timestamp = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["version", "timestamp"], name="sample_version_time"),
            models.Index(fields=["timestamp"], name="sample_time"),  # the retention purge
        ]

    def __str__(self) -> str:
        return f"sample {self.client_id} of {self.version_id}"


class SamplingPolicy(models.Model):
    """Per prompt: the share of posted samples kept, and for how long (None: the `SAMPLE_RETENTION_DAYS` setting)."""

    prompt = models.OneToOneField(Prompt, on_delete=models.CASCADE, related_name="sampling_policy")
    rate = models.FloatField(default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    retention_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    updated_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "sampling policies"

    def __str__(self) -> str:
        return f"{self.prompt.name}: keep {self.rate:.0%}"
