"""Label moves through the release gates, and rollbacks: where production returns to and when it was live."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from promptreg import composition, composition_moves, signals
from promptreg.exceptions import Conflict, GateBlocked, InvalidInput, NothingToRollBack
from promptreg.gates import missing_gates, protected_labels
from promptreg.history import set_change_reason
from promptreg.models import (
    PRODUCTION,
    Label,
    LabelMove,
    Prompt,
    PromptVersion,
    Scope,
    validate_label_name,
)
from promptreg.services.base import Actor, event_emit, get_version, lock_prompt, on_commit_changed, require_text


@transaction.atomic
def label_move(
    *,
    name: str,
    label: str,
    version: int,
    actor: Actor,
    reason: str,
    override: bool = False,
    expected_current: int | None = None,
) -> LabelMove:
    """Point `label` at a version. A protected label (`production`, see `gates.protected_labels`) is
    gated by the review policy; an admin may override, and a gate-override key always does, each
    recorded with the gates it bypassed."""
    actor.require(Scope.DEPLOY, "Moving a label")
    if override:
        actor.require_override("Overriding a promotion gate")
    override = override or actor.gate_override_key
    reason = require_text(reason, "A reason")
    try:
        validate_label_name(label)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], code="invalid_label") from None
    prompt = lock_prompt(name)
    if prompt.is_retired:
        raise InvalidInput(f"'{name}' is retired; restore it before deploying.", code="prompt_retired")
    target = get_version(prompt, version)
    current = Label.objects.filter(prompt=prompt, name=label).select_related("version").first()
    current_number = current.version.number if current else None
    if expected_current is not None and current_number != expected_current:
        raise Conflict(
            f"{label} is now v{current_number}, not v{expected_current}: someone else moved it.", code="stale_label"
        )
    if current and current.version_id == target.id:
        raise InvalidInput(f"{label} already points at v{target.number}.", code="no_change")
    composition.check_target(target)
    dependents = composition_moves.affected(prompt.name, label)
    missing = missing_gates(target, label) + composition_moves.move_gates(target, label, dependents)
    if missing and not override:
        raise GateBlocked(
            f"v{target.number} cannot take the {label} label yet: " + "; ".join(missing) + ".",
            details={"missing": missing},
        )
    bypassed = missing if override else []
    move = _move(
        prompt, label, current, target, actor, reason, is_rollback=False, bypassed=bypassed, dependents=dependents
    )
    composition_moves.check_dependents(prompt.name, label, dependents)
    return move


def _move(
    prompt: Prompt,
    label: str,
    current: Label | None,
    target: PromptVersion,
    actor: Actor,
    reason: str,
    *,
    is_rollback: bool,
    bypassed: list[str],
    dependents: list[composition_moves.Affected],
) -> LabelMove:
    """Point the label, log the move, and write it into the audit trail of each dependent whose text follows it."""
    from_version = current.version if current else None
    if current is None:
        current = Label(prompt=prompt, name=label)
    current.version = target
    current.updated_at = timezone.now()
    set_change_reason(current, reason)
    current.save()
    move = LabelMove.objects.create(
        prompt=prompt,
        label=label,
        from_version=from_version,
        to_version=target,
        is_rollback=is_rollback,
        is_override=bool(bypassed),
        bypassed_gates=bypassed,
        via=actor.via,
        reason=reason,
        **actor.record(),
    )
    composition_moves.record_dependent_changes(move, dependents)
    on_commit_changed(prompt.name)
    transaction.on_commit(partial(signals.label_moved.send, sender=LabelMove, move=move))
    event_emit("label.moved", prompt, move, actor, reason)
    return move


def rollback_target(prompt: Prompt, label: str = PRODUCTION) -> PromptVersion | None:
    """The version `label` goes back to: the one live before the current one.

    Replays the label's move log as a stack (an activation pushes, a rollback
    pops back to its target), then walks down from the current version,
    skipping repeats of it and versions that were rolled back from and not
    deliberately re-activated since. Never `number - 1`: that version may
    never have been live.
    """
    moves = (
        prompt.label_moves.filter(label=label)
        .order_by("id")
        .values_list("to_version_id", "from_version_id", "is_rollback")
    )
    stack: list[int] = []
    activated_at: dict[int, int] = {}
    rolled_back_at: dict[int, int] = {}
    for i, (to_id, from_id, is_rollback) in enumerate(moves):
        if is_rollback:
            rolled_back_at[from_id] = i
            while stack and stack[-1] != to_id:
                stack.pop()
            if not stack:
                stack.append(to_id)
        else:
            stack.append(to_id)
            activated_at[to_id] = i
    if not stack:
        return None
    current = stack[-1]
    for version_id in reversed(stack[:-1]):
        if version_id == current or rolled_back_at.get(version_id, -1) > activated_at.get(version_id, -1):
            continue
        return PromptVersion.objects.get(pk=version_id)
    return None


def live_span(
    prompt: Prompt, version: PromptVersion, label: str = PRODUCTION
) -> tuple[datetime, datetime | None] | None:
    """When `version` last served `label`: (from, until), `until` None while it still does; None if it never did.

    What the rollback dialog shows of its target, so on-call sees which period production returns to."""
    start = (
        prompt.label_moves.filter(label=label, to_version=version)
        .order_by("-id")
        .values_list("id", "created_at")
        .first()
    )
    if start is None:
        return None
    end = (
        prompt.label_moves.filter(label=label, id__gt=start[0])
        .order_by("id")
        .values_list("created_at", flat=True)
        .first()
    )
    return start[1], end


@transaction.atomic
def rollback(
    *, name: str, actor: Actor, reason: str, expected_current: int | None = None, label: str = PRODUCTION
) -> LabelMove:
    """Move `label` back to the version that was live before the current one.

    `expected_current` makes it exactly-once: a button or monitor that saw vN
    does nothing if production is no longer vN (someone already acted).
    """
    actor.require(Scope.DEPLOY, "Rolling back")
    reason = require_text(reason, "A reason")
    prompt = lock_prompt(name)
    current = Label.objects.filter(prompt=prompt, name=label).select_related("version").first()
    if current is None:
        raise NothingToRollBack(f"'{name}' has no {label} version to roll back from.")
    if expected_current is not None and current.version.number != expected_current:
        raise Conflict(
            f"{label} is now v{current.version.number}, not v{expected_current}: it was already moved, nothing was "
            f"rolled back.",
            code="stale_expectation",
        )
    target = rollback_target(prompt, label)
    if target is None:
        raise NothingToRollBack(
            f"'{name}' {label} is at v{current.version.number} and has no earlier live version to roll back to."
        )
    _check_rollback_target(prompt, label, target)
    dependents = composition_moves.affected(prompt.name, label)
    move = _move(prompt, label, current, target, actor, reason, is_rollback=True, bypassed=[], dependents=dependents)
    composition_moves.check_dependents(prompt.name, label, dependents)
    signals.rolled_back.send(sender=LabelMove, move=move)
    return move


def _check_rollback_target(prompt: Prompt, label: str, target: PromptVersion) -> None:
    """A rollback needs no gate of its own (its target was live), but what the target includes may have moved since:
    it must still resolve, or the emergency action would break serving, and at a gated label what it includes must
    pass the gates a label move would ask of it (`composition_moves.include_gaps`)."""
    back = f"Rolling back {label} of '{prompt.name}' to v{target.number}"
    try:
        composition.resolve(target)
    except composition.CompositionError as exc:
        raise Conflict(
            f"{back} would leave it unservable: {exc.message} Nothing was rolled back: fix the include first, or "
            "activate a version that resolves.",
            code="dependency_unresolved",
        ) from None
    missing = composition_moves.include_gaps(target) if label in protected_labels(prompt.prompt_type) else []
    if missing:
        raise GateBlocked(
            f"{back} would serve included text that passed no gate: " + "; ".join(missing) + ". Nothing was rolled "
            "back: move the include to a version that passes them, or have an admin activate the version with an "
            "override.",
            details={"missing": missing},
        )
