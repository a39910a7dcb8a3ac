"""The registry: prompts, immutable versions, labels and their move log, reviews, API keys."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from simple_history.models import HistoricalRecords

from promptreg.templating import Compiled, Template, normalize_newlines

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*(?:/[a-z0-9]+(?:-[a-z0-9]+)*)*$")
LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
PRODUCTION = "production"
LATEST = "latest"


# Segments the API appends to a prompt name; a name ending in one would be unreachable.
RESERVED_SEGMENTS = frozenset({"versions", "labels", "rollback", "monitor", "tags", "dataset"})


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
            "the API uses it after a prompt name (…/versions, …/labels/…, …/rollback, …/monitor, …/dataset)."
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
    def active(self) -> PromptQuerySet:
        return self.filter(retired_at__isnull=True)

    def with_summary(self) -> PromptQuerySet:
        """One query for the list page: production version, latest version, last change, pending reviews."""
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
        return self.template.compile(**values)

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


class _HasActor(Protocol):
    @property
    def actor(self) -> AbstractBaseUser | None: ...
    @property
    def api_key(self) -> ApiKey | None: ...


class ActorNamed:
    """For records with an `actor` (a user) and an `api_key`: who did it, as people read it."""

    @property
    def actor_name(self: _HasActor) -> str:
        user, key = self.actor, self.api_key  # None without a query when unset
        if user is not None:
            return user.get_username()
        if key is not None:
            return f"API key {key.name}"
        return "promptreg"


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


class ReviewDecision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REQUEST_CHANGES = "request_changes", "Request changes"
    COMMENT = "comment", "Comment"


class Review(models.Model):  # noqa: DJ008 — shown only through its parent's pages; no __str__ by design
    version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="reviews")
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


class Scope(models.TextChoices):
    READ = "read", "read (fetch prompts)"
    WRITE = "write", "write (create versions, post scores)"
    DEPLOY = "deploy", "deploy (move labels within the gates)"
    ADMIN = "admin", "admin (override gates, with a reason)"


SECRET_PREFIX = "sk-pr-"
PUBLIC_PREFIX = "pk-pr-"


def hash_secret(secret: str) -> str:
    # Secrets are 256-bit random tokens, so a fast hash is enough (no dictionary
    # attack is possible) and keeps the fetch path fast.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def usable(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    name = models.CharField(max_length=100)
    public_id = models.CharField(max_length=40, unique=True)
    secret_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    # The person who answers for what the key does: versions published with it are theirs (four-eyes).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="api_keys"
    )
    # A pipeline key whose changes were reviewed elsewhere (a pull request): its label moves bypass
    # the gates on every route, each recorded as an override naming the key.
    gate_override = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(excluded_fields=["secret_hash"])

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"

    @staticmethod
    def issue_problem(*, scopes: list[str], owner=None, gate_override: bool = False) -> str | None:
        """Why a key with these settings cannot be issued, or None."""
        unknown = sorted(set(scopes) - set(Scope.values))
        if unknown or not scopes:
            return f"scopes must be some of {', '.join(Scope.values)}; got {', '.join(unknown) or 'none'}"
        if gate_override and not ({Scope.DEPLOY, Scope.ADMIN} & set(scopes)):
            return "a gate-override key moves labels: give it the deploy scope"
        if owner is not None and not owner.is_active:
            return f"the owner {owner.get_username()} is not an active user"
        return None

    @classmethod
    def issue(
        cls, *, name: str, scopes: list[str], created_by=None, owner=None, gate_override: bool = False
    ) -> tuple[ApiKey, str]:
        """Create a key; the secret is returned once and only its hash is stored."""
        problem = cls.issue_problem(scopes=scopes, owner=owner, gate_override=gate_override)
        if problem:
            raise ValidationError(problem)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        key = cls.objects.create(
            name=name,
            public_id=PUBLIC_PREFIX + secrets.token_hex(8),
            secret_hash=hash_secret(secret),
            scopes=[s for s in Scope.values if s in scopes],
            owner=owner,
            gate_override=gate_override,
            created_by=created_by,
        )
        return key, secret

    @classmethod
    def find(cls, secret: str) -> ApiKey | None:
        return cls.objects.usable().filter(secret_hash=hash_secret(secret)).first()

    @classmethod
    def find_pair(cls, public_id: str, secret: str) -> ApiKey | None:
        """HTTP Basic (public id + secret), as the Langfuse SDK sends it."""
        key = cls.objects.usable().filter(public_id=public_id).first()
        if key and hmac.compare_digest(key.secret_hash, hash_secret(secret)):
            return key
        return None

    def has_scope(self, scope: str) -> bool:
        # admin implies every other scope; deploy implies read.
        if Scope.ADMIN in self.scopes:
            return True
        return scope in self.scopes or (scope == Scope.READ and Scope.DEPLOY in self.scopes)
