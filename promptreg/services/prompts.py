"""Retiring a prompt (hidden from lists and app servers, nothing deleted) and restoring it."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from promptreg import composition_moves
from promptreg.exceptions import InvalidInput
from promptreg.history import set_change_reason
from promptreg.models import (
    Prompt,
    Scope,
)
from promptreg.services.base import Actor, event_emit, lock_prompt, on_commit_changed, require_text


@transaction.atomic
def prompt_retire(*, name: str, actor: Actor, reason: str) -> Prompt:
    """Hide a prompt from the default list and from app servers; nothing is deleted."""
    actor.require(Scope.DEPLOY, "Retiring a prompt")
    reason = require_text(reason, "A reason")
    prompt = lock_prompt(name)
    if prompt.is_retired:
        raise InvalidInput(f"'{name}' is already retired.", code="invalid_state")
    composition_moves.require_unused(name)
    prompt.retired_at = timezone.now()
    set_change_reason(prompt, f"retired: {reason}")
    prompt.save()
    on_commit_changed(name)
    event_emit("prompt.retired", prompt, prompt, actor, reason)
    return prompt


@transaction.atomic
def prompt_restore(*, name: str, actor: Actor, reason: str) -> Prompt:
    actor.require(Scope.DEPLOY, "Restoring a prompt")
    reason = require_text(reason, "A reason")
    prompt = lock_prompt(name)
    if not prompt.is_retired:
        raise InvalidInput(f"'{name}' is not retired.", code="invalid_state")
    prompt.retired_at = None
    set_change_reason(prompt, f"restored: {reason}")
    prompt.save()
    on_commit_changed(name)
    event_emit("prompt.restored", prompt, prompt, actor, reason)
    return prompt
