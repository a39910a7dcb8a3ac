"""Playground runs: one row per version run in a compare, kept for a day so the page can poll its results.

A row is the hand-off between the page and the worker: the page creates the rows of a compare (one `group`),
the worker claims each with a conditional UPDATE (`queued → running`) and writes the answer or the error in
words. A run no worker claimed in time is failed by the page with a sentence, and a late worker's claim then
finds nothing to do.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

__all__ = ["PlaygroundRun", "PlaygroundState"]


class PlaygroundState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class PlaygroundRun(models.Model):
    group = models.UUIDField(default=uuid.uuid4, db_index=True)
    position = models.PositiveSmallIntegerField(default=0)
    prompt = models.ForeignKey("promptreg.Prompt", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # The version run, or (None) the unsaved draft of the authoring form, kept in `draft` as {"kind","body","config"}.
    version = models.ForeignKey(
        "promptreg.PromptVersion", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    draft = models.JSONField(null=True, blank=True)
    variables = models.JSONField(default=dict)
    overrides = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=PlaygroundState.choices, default=PlaygroundState.QUEUED)
    output = models.TextField(blank=True)
    model = models.CharField(max_length=200, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost_usd = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["group", "position"]

    def __str__(self) -> str:
        return f"{self.title} ({self.state})"

    @property
    def title(self) -> str:
        return "draft" if self.version is None else f"v{self.version.number}"

    @property
    def is_finished(self) -> bool:
        return self.state in (PlaygroundState.DONE, PlaygroundState.FAILED)
