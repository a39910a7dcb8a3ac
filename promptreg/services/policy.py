"""Policy changes (Reviewers and Admins): a prompt's type and the review policy of a type, each recorded as a
`PolicyChange`."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from promptreg.exceptions import InvalidInput
from promptreg.history import set_change_reason
from promptreg.models import (
    PolicyArea,
    PolicyChange,
    Prompt,
    PromptType,
    ReviewPolicy,
    validate_label_name,
)
from promptreg.services.base import POLICY, Actor, lock_prompt, on_commit_changed


def policy_change_record(
    *,
    actor: Actor,
    area: str,
    before: Any,
    after: Any,
    reason: str = "",
    prompt: Prompt | None = None,
    prompt_type: str = "",
) -> PolicyChange:
    """Write a change to what the gate asks into the audit trail (the caller has checked POLICY)."""
    return PolicyChange.objects.create(
        prompt=prompt,
        prompt_type=prompt_type or (prompt.prompt_type if prompt else ""),
        area=area,
        before="" if before is None else str(before),
        after="" if after is None else str(after),
        reason=reason,
        via=actor.via,
        **actor.record(),
    )


def set_prompt_type(prompt: Prompt, prompt_type: str, actor: Actor, reason: str) -> None:
    """The prompt row is locked by the caller."""
    actor.require(
        POLICY,
        f"Changing the type of '{prompt.name}' (it decides the review policy)",
        code="policy_change_requires_admin",
    )
    before = prompt.prompt_type
    prompt.prompt_type = prompt_type
    set_change_reason(prompt, f"type {before} → {prompt_type} by {actor.name}" + (f": {reason}" if reason else ""))
    prompt.save()
    policy_change_record(
        actor=actor, area=PolicyArea.PROMPT_TYPE, before=before, after=prompt_type, reason=reason, prompt=prompt
    )


@transaction.atomic
def prompt_set_type(*, name: str, prompt_type: str, actor: Actor, reason: str = "") -> Prompt:
    """Change a prompt's type, and with it the review policy its versions meet (Reviewer or Admin)."""
    if prompt_type not in PromptType.values:
        raise InvalidInput(f"prompt type must be one of {', '.join(PromptType.values)}.", code="invalid_prompt_type")
    prompt = lock_prompt(name)
    if prompt.prompt_type != prompt_type:
        set_prompt_type(prompt, prompt_type, actor, reason)
        on_commit_changed(prompt.name)
    return prompt


POLICY_FIELDS = ("requires_review", "requires_eval", "min_approvals", "protected_labels")


@transaction.atomic
def review_policy_update(*, prompt_type: str, actor: Actor, changes: dict[str, Any], reason: str = "") -> ReviewPolicy:
    """Change what a prompt type's versions need before a protected label (Reviewer or Admin);
    the change is in the audit trail of every prompt of that type."""
    actor.require(POLICY, "Changing a review policy")
    if prompt_type not in PromptType.values:
        raise InvalidInput(f"prompt type must be one of {', '.join(PromptType.values)}.", code="invalid_prompt_type")
    unknown = sorted(set(changes) - set(POLICY_FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown review-policy fields: {', '.join(unknown)}.", code="invalid_policy")
    labels = changes.get("protected_labels")
    if labels is not None:
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise InvalidInput("protected_labels must be a list of label names.", code="invalid_policy")
        for label in labels:
            try:
                validate_label_name(label)
            except ValidationError as exc:
                raise InvalidInput(f"protected_labels: {exc.messages[0]}", code="invalid_policy") from None
        changes = {**changes, "protected_labels": sorted(set(labels))}
    policy = ReviewPolicy.objects.select_for_update().filter(prompt_type=prompt_type).first() or ReviewPolicy.for_type(
        prompt_type
    )
    before = {f: getattr(policy, f) for f in POLICY_FIELDS}
    for field_name, value in changes.items():
        setattr(policy, field_name, value)
    after = {f: getattr(policy, f) for f in POLICY_FIELDS}
    if before == after:
        return policy
    set_change_reason(policy, f"changed by {actor.name}" + (f": {reason}" if reason else ""))
    policy.save()
    diff = [f for f in POLICY_FIELDS if before[f] != after[f]]
    policy_change_record(
        actor=actor,
        area=PolicyArea.REVIEW_POLICY,
        prompt_type=prompt_type,
        reason=reason,
        before=", ".join(f"{f}={before[f]}" for f in diff),
        after=", ".join(f"{f}={after[f]}" for f in diff),
    )
    return policy
