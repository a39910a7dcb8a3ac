"""Who acts (`Actor`: a user, an API key or the server itself, and what each may do), and what every action
shares: the prompt's row lock, events for webhooks and the audit, invalidation after commit."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import transaction

from promptreg import permissions, signals
from promptreg.exceptions import Forbidden, InvalidInput, NotFound
from promptreg.models import (
    ROLE_FOR_SCOPE,
    ApiKey,
    Prompt,
    PromptVersion,
    Scope,
)

REVIEW = "review"


# Policy: a prompt's type, its review policy, its gate dataset and that dataset's scorers decide what the release
# gate asks of a change, so they are not an author's to change: Reviewers and Admins (API: the admin scope) only.
POLICY = "policy"
# A signed-in user's role for each scope: the same as a key's owner needs for it, plus reviewing and policy.
ROLE_FOR_SCOPE_ACTION = {
    **ROLE_FOR_SCOPE,
    REVIEW: permissions.REVIEWER,
    POLICY: permissions.REVIEWER,  # has_role grants Admins every role
}


@dataclass(frozen=True)
class Actor:
    """Who acts and through what: a signed-in user, an API key, or the server itself (CLI, monitors)."""

    via: str
    user: Any = None
    api_key: ApiKey | None = None

    def allowed(self, scope: str) -> bool:
        if self.api_key is not None:
            if scope == POLICY:
                return self.api_key.has_scope(Scope.ADMIN)
            return scope != REVIEW and self.api_key.has_scope(scope)
        if self.user is not None:
            if scope == Scope.READ:
                return bool(self.user.is_authenticated and self.user.is_active)
            return permissions.has_role(self.user, ROLE_FOR_SCOPE_ACTION[scope])
        return True  # code running on the server itself: manage.py, beat, workers

    def require(self, scope: str, action: str, *, code: str | None = None) -> None:
        if not self.allowed(scope):
            if self.api_key is not None:
                what = "the 'admin' scope" if scope == POLICY else f"the '{scope}' scope"
            else:
                what = f"the {ROLE_FOR_SCOPE_ACTION.get(scope, scope)} role"
            raise Forbidden(f"{action} needs {what}.", code=code)

    @property
    def gate_override_key(self) -> bool:
        """A key made with `--gate-override`: its label moves bypass the gates (recorded) on every route."""
        return self.api_key is not None and self.api_key.gate_override

    def require_override(self, action: str) -> None:
        """An explicit override (`"override": true`): the admin scope or role, or a gate-override key."""
        if not self.gate_override_key:
            self.require(Scope.ADMIN, action)

    @property
    def accountable_user(self) -> Any:
        """The person who answers for the action: the signed-in user, or the key's owner."""
        if self.user is not None:
            return self.user
        return self.api_key.owner if self.api_key is not None else None

    @property
    def name(self) -> str:
        if self.user is not None:
            username: str = self.user.get_username()
            return username
        if self.api_key is not None:
            return f"API key {self.api_key.name}"
        return "promptreg"

    @property
    def person(self) -> Any:
        """The accountable person: the signed-in user, or the owner of the API key acting (None for the server)."""
        return self.user if self.user is not None else (self.api_key.owner if self.api_key is not None else None)

    def record(self) -> dict[str, Any]:
        """Fields that say who did something, for the models that record it."""
        return {"actor": self.user, "api_key": self.api_key}


def on_commit_changed(prompt_name: str) -> None:
    transaction.on_commit(partial(signals.serving_changed.send, sender=Prompt, prompt_name=prompt_name))


def event_emit(event: str, prompt: Prompt, instance: Any, actor: Actor, reason: str = "") -> None:
    """Tell `signals.prompt_event`'s receivers (webhooks) about an action, inside its transaction."""
    signals.prompt_event.send(
        sender=type(instance), event=event, prompt=prompt, instance=instance, actor=actor, reason=reason
    )


def lock_prompt(name: str) -> Prompt:
    try:
        return Prompt.objects.select_for_update().get(name=name)
    except Prompt.DoesNotExist:
        raise NotFound(f"No prompt named '{name}'.", code="prompt_not_found") from None


def get_version(prompt: Prompt, number: int) -> PromptVersion:
    try:
        return prompt.versions.get(number=number)
    except PromptVersion.DoesNotExist:
        raise NotFound(f"'{prompt.name}' has no version {number}.", code="version_not_found") from None


def require_text(value: str | None, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidInput(f"{what} is required.", code="missing_field")
    return value
