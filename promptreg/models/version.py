"""Immutable prompt versions."""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from promptreg.models.prompt import Prompt, Tag
from promptreg.models.review import Review, ReviewDecision
from promptreg.templating import Compiled, CompileError, Template, normalize_newlines


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"


class PromptKind(models.TextChoices):
    TEXT = "text", "Text"
    CHAT = "chat", "Chat"


CONTENT_FIELDS = ("prompt_id", "number", "kind", "body", "config", "commit_message", "purpose", "known_edge_cases")


class PromptVersionQuerySet(models.QuerySet["PromptVersion"]):
    def waiting_for_changes_by(self, user) -> PromptVersionQuerySet:
        """`user`'s versions a reviewer sent back, until they publish a newer version of that prompt, newest first;
        each with `request_id` (its latest "request changes" review)."""
        newer = PromptVersion.objects.filter(
            prompt=models.OuterRef("prompt"), number__gt=models.OuterRef("number"), created_by=user
        )
        latest_request = Review.objects.filter(
            version=models.OuterRef("pk"), decision=ReviewDecision.REQUEST_CHANGES
        ).order_by("-created_at", "-id")
        return (
            self.filter(created_by=user, status=VersionStatus.CHANGES_REQUESTED, prompt__retired_at__isnull=True)
            .exclude(models.Exists(newer))
            .annotate(request_id=models.Subquery(latest_request.values("id")[:1]))
            .order_by("-created_at", "-id")
        )


class PromptVersion(models.Model):
    """One immutable version: an edit is a new version. Only `status` changes."""

    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=PromptKind.choices, default=PromptKind.TEXT)
    body = models.JSONField()
    config = models.JSONField(default=dict, blank=True)
    variables = models.JSONField(default=list, blank=True)
    commit_message = models.TextField()
    purpose = models.TextField(blank=True)
    known_edge_cases = models.TextField(blank=True)
    # Example inputs for the compiled preview on the dashboard; never sent to app servers.
    sample_values = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64, db_index=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    source_commit = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_key = models.ForeignKey("ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=20, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    # Per-version tags (`legal-approved`, `gpt-4o-tuned`): metadata about a version, not part of its content,
    # so they may change after publishing (with history), unlike everything above.
    tags = models.ManyToManyField(Tag, blank=True, related_name="versions")
    history = HistoricalRecords(m2m_fields=[tags])

    objects = PromptVersionQuerySet.as_manager()

    class Meta:
        ordering = ["prompt", "-number"]
        constraints = [models.UniqueConstraint(fields=["prompt", "number"], name="unique_version_number")]

    def __str__(self) -> str:
        return f"{self.prompt.name} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            stored = PromptVersion.objects.filter(pk=self.pk).values(*CONTENT_FIELDS).first()
            if stored and any(stored[f] != getattr(self, f) for f in CONTENT_FIELDS):
                raise ValidationError("Prompt versions are immutable: publish a new version instead.")
        super().save(*args, **kwargs)

    @property
    def template(self) -> Template:
        return Template(self.kind, self.body)

    def approval_count(self) -> int:
        """Distinct reviewers other than the author who approved this version."""
        return (
            self.reviews.filter(decision=ReviewDecision.APPROVE)
            .exclude(reviewer_id=self.created_by_id)
            .values("reviewer_id")
            .distinct()
            .count()
        )

    def compile(self, **values: Any) -> Compiled:
        """Fill in the template, its includes resolved (what a fetch serves); CompileError names what is missing."""
        return self.resolved_template.compile(**values)

    @cached_property
    def resolved_template(self) -> Template:
        """The template with its `@@@langfusePrompt@@@` includes replaced as the registry stood when first asked
        (an evaluation run sees one snapshot); CompileError when one does not resolve."""
        from promptreg import composition  # composition builds on the models

        try:
            return Template(self.kind, composition.resolve(self).body)
        except composition.CompositionError as exc:
            raise CompileError(exc.message) from None

    @property
    def author_name(self) -> str:
        user, key = self.created_by, self.created_by_key  # None without a query when unset
        if user is not None and key is not None:
            return f"{user.get_username()} (API key {key.name})"
        if user is not None:
            return user.get_username()
        if key is not None:
            return f"API key {key.name}"
        return "system"

    @property
    def has_accountable_author(self) -> bool:
        """False for a version no person answers for (published by an ownerless key or an anonymous
        pipeline): four-eyes cannot tell its author from its reviewer, so review flags it."""
        return self.created_by_id is not None

    @staticmethod
    def hash_content(kind: str, body: Any, config: dict) -> str:
        # Hashed as stored (line endings normalised), so a file with `\r\n` is not a change of its stored version.
        canonical = json.dumps(
            [kind, normalize_newlines(body), config], sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode()).hexdigest()
