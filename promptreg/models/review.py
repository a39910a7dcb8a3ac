"""Reviews of versions, and the review policy with its change log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from promptreg.models.actor import ActorNamed
from promptreg.models.prompt import Prompt, PromptType


class ReviewDecision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REQUEST_CHANGES = "request_changes", "Request changes"
    COMMENT = "comment", "Comment"


class Review(models.Model):  # noqa: DJ008 — shown only through its parent's pages; no __str__ by design
    version = models.ForeignKey("PromptVersion", on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    decision = models.CharField(max_length=20, choices=ReviewDecision.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["created_at", "id"]


class ReviewPolicy(models.Model):
    """What a version of a prompt type needs before it may take the `production` label."""

    prompt_type = models.CharField(max_length=32, choices=PromptType.choices, unique=True)
    requires_review = models.BooleanField(default=True)
    requires_eval = models.BooleanField(default=False)
    min_approvals = models.PositiveSmallIntegerField(default=1)
    # Labels gated for this type on top of the PROTECTED_LABELS setting (e.g. ["staging"]).
    protected_labels = models.JSONField(default=list, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "review policies"
        ordering = ["prompt_type"]

    def __str__(self) -> str:
        needs = [n for n, on in (("peer review", self.requires_review), ("eval gate", self.requires_eval)) if on]
        return f"{self.get_prompt_type_display()}: {', '.join(needs) or 'no gate'}"

    @classmethod
    def for_type(cls, prompt_type: str) -> ReviewPolicy:
        policy = cls.objects.filter(prompt_type=prompt_type).first()
        return policy or cls(prompt_type=prompt_type, requires_review=True, requires_eval=False)

    @property
    def gated_labels(self) -> list[str]:
        """The labels a version of this type may take only through the gates: the global
        PROTECTED_LABELS setting plus this type's own."""
        return sorted(set(settings.PROTECTED_LABELS) | set(self.protected_labels or []))


class PolicyArea(models.TextChoices):
    PROMPT_TYPE = "prompt_type", "Prompt type"
    REVIEW_POLICY = "review_policy", "Review policy"
    GATE_DATASET = "gate_dataset", "Gate dataset"
    DATASET_SCORERS = "dataset_scorers", "Gate dataset's scorers"
    DATASET_CASES = "dataset_cases", "Gate dataset's cases"


class PolicyChange(ActorNamed, models.Model):
    """A change to what the release gate asks of a prompt: its type, its type's review policy,
    its gate dataset or that dataset's scorers. Append-only; shown in the prompt's audit trail.

    A review-policy change concerns every prompt of its type: `prompt` is empty and
    `prompt_type` says which prompts it touched."""

    prompt = models.ForeignKey(Prompt, null=True, blank=True, on_delete=models.PROTECT, related_name="policy_changes")
    prompt_type = models.CharField(max_length=32, blank=True, db_index=True)
    area = models.CharField(max_length=20, choices=PolicyArea.choices)
    before = models.TextField(blank=True)
    after = models.TextField(blank=True)
    reason = models.TextField(blank=True)
    via = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey("ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_area_display()}: {self.before or '(none)'} → {self.after or '(none)'}"
