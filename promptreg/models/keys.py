"""API keys: scopes, hashed secrets."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from promptreg import permissions


class Scope(models.TextChoices):
    READ = "read", "read (fetch prompts)"
    WRITE = "write", "write (create versions, post scores)"
    DEPLOY = "deploy", "deploy (move labels within the gates)"
    ADMIN = "admin", "admin (override gates, with a reason)"


# The role a key's owner needs for the key to use each scope (`read` needs any role).
ROLE_FOR_SCOPE: dict[str, str] = {
    Scope.WRITE: permissions.AUTHOR,
    Scope.DEPLOY: permissions.DEPLOYER,
    Scope.ADMIN: permissions.ADMIN,
}


def owner_holds(user, scope: str) -> bool:
    """Whether `user` holds the role a key's `scope` stands for (Admins hold every role)."""
    if scope in ROLE_FOR_SCOPE:
        return permissions.has_role(user, ROLE_FOR_SCOPE[scope])
    return any(permissions.has_role(user, role) for role in permissions.ROLES)


def scopes_beyond(owner, scopes: list[str]) -> list[str]:
    """The scopes `owner`'s roles do not cover (none for a key without an owner)."""
    return [] if owner is None else [scope for scope in scopes if not owner_holds(owner, scope)]


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
        lacking = scopes_beyond(owner, scopes)
        if lacking:
            scope = lacking[0]
            role = ROLE_FOR_SCOPE.get(scope, "a")
            return (
                f"a key with the '{scope}' scope needs an owner with the {role} role; {owner.get_username()} lacks it"
            )
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
        return cls.objects.usable().select_related("owner").filter(secret_hash=hash_secret(secret)).first()

    @classmethod
    def find_pair(cls, public_id: str, secret: str) -> ApiKey | None:
        """HTTP Basic (public id + secret), as the Langfuse SDK sends it."""
        key = cls.objects.usable().select_related("owner").filter(public_id=public_id).first()
        if key and hmac.compare_digest(key.secret_hash, hash_secret(secret)):
            return key
        return None

    def has_scope(self, scope: str) -> bool:
        """The key was given `scope` (admin implies every other scope; deploy implies read) and its owner, if it has
        one, holds the role for it now: a key is never stronger than the person who answers for it, so a key whose
        owner lost the Deployer role (or left: an inactive user) no longer deploys."""
        return self.scope_problem(scope) is None

    def scope_problem(self, scope: str) -> str | None:
        """Why the key may not use `scope` now, as a sentence, or None."""
        granted = Scope.ADMIN in self.scopes or (
            scope in self.scopes or (scope == Scope.READ and Scope.DEPLOY in self.scopes)
        )
        if not granted:
            return f"This API key lacks the '{scope}' scope (it has {', '.join(self.scopes)})."
        if self.owner is not None and not owner_holds(self.owner, scope):
            owner = self.owner.get_username()
            if not self.owner.is_active:
                return f"This API key's owner {owner} is no longer an active user, so the key is suspended."
            role = ROLE_FOR_SCOPE.get(scope, "any")
            return f"This API key's owner {owner} no longer holds the {role} role its '{scope}' scope needs."
        return None

    def suspended_scopes(self) -> list[str]:
        """The scopes the key was given that its owner's roles no longer allow (shown on the keys page)."""
        return scopes_beyond(self.owner, self.scopes)
