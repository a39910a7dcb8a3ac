"""Prompts, their names and types, and tags."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from simple_history.models import HistoricalRecords

if TYPE_CHECKING:
    from promptreg.models.version import PromptVersion

NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*(?:/[a-z0-9]+(?:-[a-z0-9]+)*)*$")
LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
PRODUCTION = "production"
LATEST = "latest"


# Segments the API appends to a prompt name; a name ending in one would be unreachable.
RESERVED_SEGMENTS = frozenset(
    {"versions", "labels", "rollback", "monitor", "tags", "dataset", "samples", "sampling", "run"}
)


def validate_prompt_name(name: str) -> None:
    """Lowercase letters, digits and hyphens; `/` separates folders."""
    if not name or len(name) > 200 or not NAME_RE.match(name):
        raise ValidationError(
            "Prompt names use lowercase letters, digits and hyphens, like 'customer-support-system' "
            "('/' separates folders, e.g. 'billing/refund-extraction')."
        )
    reserved = RESERVED_SEGMENTS.intersection(name.split("/")[1:])
    if reserved:
        raise ValidationError(
            f"'{sorted(reserved)[0]}' cannot be a folder or name segment after the first: "
            "the API uses it after a prompt name (…/versions, …/labels/…, …/rollback, …/monitor, …/dataset, "
            "…/samples, …/run)."
        )


def prompt_name_warnings(name: str) -> list[str]:
    """Soft convention `{feature}-{role}`: a warning, never an error, so imports work."""
    leaf = name.rsplit("/", 1)[-1]
    if "-" not in leaf:
        return [f"'{name}' has no role suffix; the convention is {{feature}}-{{role}}, e.g. '{leaf}-system'."]
    return []


def validate_label_name(name: str) -> None:
    if not LABEL_RE.match(name or "") or name == LATEST:
        raise ValidationError(
            "Label names use lowercase letters, digits, '-', '_' and '.' (at most 63); 'latest' is computed."
        )


class PromptType(models.TextChoices):
    SYSTEM = "system", "System"
    RAG_QUERY = "rag-query", "RAG query"
    EXTRACTION = "extraction", "Extraction"
    AGENT_PLANNING = "agent-planning", "Agent planning"
    OUTPUT_FORMAT = "output-format", "Output format"


class Tag(models.Model):
    name = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PromptQuerySet(models.QuerySet["Prompt"]):
    # Versions and labels point at prompts, so their models are imported where these queries use them.

    def active(self) -> PromptQuerySet:
        return self.filter(retired_at__isnull=True)

    def with_summary(self) -> PromptQuerySet:
        """One query for the list page: production version, latest version, last change, pending reviews."""
        from promptreg.models.label import Label
        from promptreg.models.version import PromptVersion, VersionStatus

        production = Label.objects.filter(prompt=models.OuterRef("pk"), name=PRODUCTION)
        versions = PromptVersion.objects.filter(prompt=models.OuterRef("pk"))
        pending = (
            versions.filter(status=VersionStatus.IN_REVIEW)
            .order_by()
            .values("prompt")
            .annotate(n=models.Count("id"))
            .values("n")
        )
        return (
            self.select_related("owner")
            .prefetch_related("tags")
            .annotate(
                production_number=models.Subquery(production.values("version__number")[:1]),
                production_created_at=models.Subquery(production.values("version__created_at")[:1]),
                production_since=models.Subquery(production.values("updated_at")[:1]),
                latest_number=models.Subquery(versions.order_by("-number").values("number")[:1]),
                latest_at=models.Subquery(versions.order_by("-number").values("created_at")[:1]),
                pending_reviews=Coalesce(models.Subquery(pending), 0),
            )
        )

    def with_tag(self, tag: str) -> PromptQuerySet:
        """Prompts tagged `tag` themselves or on any of their versions."""
        from promptreg.models.version import PromptVersion

        tagged_version = PromptVersion.objects.filter(prompt=models.OuterRef("pk"), tags__name=tag.strip().lower())
        return self.filter(models.Q(tags__name=tag.strip().lower()) | models.Exists(tagged_version))

    def matching(
        self, *, search: str = "", tag: str = "", kind: str = "", prompt_type: str = "", label: str = ""
    ) -> PromptQuerySet:
        """Prompts a catalogue search asks for: name or description containing `search`, with `tag`, whose
        newest version is of `kind` (text/chat), of `prompt_type`, with a `label`; empty values do not filter."""
        found: PromptQuerySet = self
        if search:
            found = found.filter(models.Q(name__icontains=search) | models.Q(description__icontains=search))
        if tag:
            found = found.with_tag(tag)
        if prompt_type:
            found = found.filter(prompt_type=prompt_type)
        if label:
            found = found.filter(labels__name=label)
        if kind:
            found = found.with_catalogue_fields().filter(
                models.Q(newest_kind=kind)
            )  # an annotation: the stubs cannot see it
        return found.distinct()

    def with_catalogue_fields(self) -> PromptQuerySet:
        """The newest version's number and kind, and the time of the last change (a version or a label move)."""
        if "newest_kind" in self.query.annotations:
            return self
        from promptreg.models.label import Label
        from promptreg.models.version import PromptVersion

        newest = PromptVersion.objects.filter(prompt=models.OuterRef("pk")).order_by("-number")
        last_move = Label.objects.filter(prompt=models.OuterRef("pk")).order_by("-updated_at")
        changed = Coalesce(models.Subquery(newest.values("created_at")[:1]), "created_at")
        moved = Coalesce(models.Subquery(last_move.values("updated_at")[:1]), "created_at")
        return self.annotate(
            newest_number=models.Subquery(newest.values("number")[:1]),
            newest_kind=models.Subquery(newest.values("kind")[:1]),
            changed_at=Greatest(changed, moved),
        )


class Prompt(models.Model):
    name = models.CharField(max_length=200, unique=True, validators=[validate_prompt_name])
    description = models.TextField(blank=True)
    prompt_type = models.CharField(max_length=32, choices=PromptType.choices, default=PromptType.SYSTEM)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="prompts")
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(m2m_fields=[tags])

    objects = PromptQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_retired(self) -> bool:
        return self.retired_at is not None

    def latest_version(self) -> PromptVersion | None:
        return self.versions.order_by("-number").first()

    def label_version(self, label: str) -> PromptVersion | None:
        """The version a label points at; `latest` is the newest version."""
        if label == LATEST:
            return self.latest_version()
        found = self.labels.select_related("version").filter(name=label).first()
        return found.version if found else None
