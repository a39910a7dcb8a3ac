"""Labels and their move log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from promptreg.models.actor import ActorNamed
from promptreg.models.prompt import Prompt, validate_label_name
from promptreg.models.version import PromptVersion


class Label(models.Model):
    """(prompt, name) → version. `production` is what app servers get by default."""

    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="labels")
    name = models.CharField(max_length=63, validators=[validate_label_name])
    version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="labels")
    updated_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["prompt", "name"]
        constraints = [models.UniqueConstraint(fields=["prompt", "name"], name="unique_label_per_prompt")]

    def __str__(self) -> str:
        return f"{self.prompt.name}@{self.name} → v{self.version.number}"


class MoveVia(models.TextChoices):
    BUTTON = "button", "Dashboard button"
    API = "api", "API key"
    CLI = "cli", "Command line"
    PIPELINE = "pipeline", "Pipeline (file import)"
    AUTO_ROLLBACK = "auto_rollback", "Automatic rollback"
    EXPERIMENT = "experiment", "Experiment"


class LabelMove(ActorNamed, models.Model):
    """The deployment log: every label move, append-only."""

    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="label_moves")
    label = models.CharField(max_length=63, db_index=True)
    from_version = models.ForeignKey(PromptVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    is_rollback = models.BooleanField(default=False)
    is_override = models.BooleanField(default=False)
    bypassed_gates = models.JSONField(default=list, blank=True)
    via = models.CharField(max_length=20, choices=MoveVia.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey("ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["prompt", "label", "id"])]

    def __str__(self) -> str:
        src = f"v{self.from_version.number}" if self.from_version is not None else "nothing"
        return f"{self.prompt.name}@{self.label}: {src} → v{self.to_version.number}"
