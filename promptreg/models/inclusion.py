"""The rows behind prompt composition (logic in `promptreg.composition`): which versions include which prompts,
and the audit record a dependent gets when an included prompt's label moves under it."""

from __future__ import annotations

from django.db import models


class Inclusion(models.Model):
    """One `@@@langfusePrompt:name=…|label=…@@@` (or `|version=N`) tag in a version, written when it is published:
    the index that finds a prompt's dependents without reading every body."""

    version = models.ForeignKey("promptreg.PromptVersion", on_delete=models.CASCADE, related_name="inclusions")
    name = models.CharField(max_length=200, db_index=True)  # the included prompt (prompts are never renamed)
    label = models.CharField(max_length=63, blank=True)
    number = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "name", "label", "number"], name="unique_inclusion"),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.label}" if self.label else f"{self.name} v{self.number}"


class DependentChange(models.Model):
    """A label move of an included prompt changed what a dependent serves: the dependent's side of the move, for its
    audit trail. `labels` lists the dependent's labels whose text changed, `[{"label", "version", "gated"}]`."""

    prompt = models.ForeignKey("promptreg.Prompt", on_delete=models.PROTECT, related_name="dependent_changes")
    move = models.ForeignKey("promptreg.LabelMove", on_delete=models.PROTECT, related_name="dependent_changes")
    labels = models.JSONField(default=list)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prompt_id} ← move {self.move_id}"
