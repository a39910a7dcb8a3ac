"""Registry actions. One function per action; every entry point (dashboard, API,
CLI, monitors, experiments) calls these, so rules and records are the same everywhere.

Writes to one prompt serialise on its row (`select_for_update`; on SQLite the
IMMEDIATE transaction mode does the same), which keeps version numbers gap-free
and label moves linear under concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from promptreg import composition, permissions, signals
from promptreg.exceptions import Conflict, Forbidden, GateBlocked, InvalidInput, NotFound, NothingToRollBack
from promptreg.gates import missing_gates
from promptreg.history import set_change_reason
from promptreg.models import (
    PRODUCTION,
    ROLE_FOR_SCOPE,
    ApiKey,
    Label,
    LabelMove,
    PolicyArea,
    PolicyChange,
    Prompt,
    PromptKind,
    PromptType,
    PromptVersion,
    Review,
    ReviewDecision,
    ReviewPolicy,
    Scope,
    Tag,
    VersionStatus,
    owner_holds,
    validate_label_name,
    validate_prompt_name,
)
from promptreg.templating import Template, TemplateError, normalize_newlines

MAX_BODY_CHARS = 200_000
MAX_MODEL_CHARS = 200  # what evaluation runs record of `config.model`
REVIEW = "review"
# Policy: a prompt's type, its review policy, its gate dataset and that dataset's scorers decide what the release
# gate asks of a change, so they are not an author's to change: Reviewers and Admins (API: the admin scope) only.
POLICY = "policy"
_ROLE_FOR_SCOPE = {
    Scope.WRITE: permissions.AUTHOR,
    Scope.DEPLOY: permissions.DEPLOYER,
    Scope.ADMIN: permissions.ADMIN,
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
            return permissions.has_role(self.user, _ROLE_FOR_SCOPE[scope])
        return True  # code running on the server itself: manage.py, beat, workers

    def require(self, scope: str, action: str, *, code: str | None = None) -> None:
        if not self.allowed(scope):
            if self.api_key is not None:
                what = "the 'admin' scope" if scope == POLICY else f"the '{scope}' scope"
            else:
                what = f"the {_ROLE_FOR_SCOPE.get(scope, scope)} role"
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


def _set_prompt_type(prompt: Prompt, prompt_type: str, actor: Actor, reason: str) -> None:
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
    prompt = _lock_prompt(name)
    if prompt.prompt_type != prompt_type:
        _set_prompt_type(prompt, prompt_type, actor, reason)
        _on_commit_changed(prompt.name)
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


def _on_commit_changed(prompt_name: str) -> None:
    transaction.on_commit(partial(signals.serving_changed.send, sender=Prompt, prompt_name=prompt_name))


def event_emit(event: str, prompt: Prompt, instance: Any, actor: Actor, reason: str = "") -> None:
    """Tell `signals.prompt_event`'s receivers (webhooks) about an action, inside its transaction."""
    signals.prompt_event.send(
        sender=type(instance), event=event, prompt=prompt, instance=instance, actor=actor, reason=reason
    )


def _lock_prompt(name: str) -> Prompt:
    try:
        return Prompt.objects.select_for_update().get(name=name)
    except Prompt.DoesNotExist:
        raise NotFound(f"No prompt named '{name}'.", code="prompt_not_found") from None


def _get_version(prompt: Prompt, number: int) -> PromptVersion:
    try:
        return prompt.versions.get(number=number)
    except PromptVersion.DoesNotExist:
        raise NotFound(f"'{prompt.name}' has no version {number}.", code="version_not_found") from None


def _require_text(value: str | None, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidInput(f"{what} is required.", code="missing_field")
    return value


def _tags(names: list[str], field: str) -> list[Tag]:
    """Tags by name (trimmed, lowercased, created when new); a name over 64 characters is refused, naming `field`."""
    cleaned = sorted({name.strip().lower() for name in names if name.strip()})
    limit = Tag._meta.get_field("name").max_length
    too_long = [name for name in cleaned if limit is not None and len(name) > limit]
    if too_long:
        raise InvalidInput(
            f"{field}: a tag has at most 64 characters ('{too_long[0][:20]}…' is longer).", code="invalid_tag"
        )
    return [Tag.objects.get_or_create(name=name)[0] for name in cleaned]


def version_tags_set(*, name: str, number: int, tags: list[str], actor: Actor) -> PromptVersion:
    """Replace a version's tags (its content stays immutable); recorded in the version's history."""
    actor.require(Scope.WRITE, "Tagging a version")
    with transaction.atomic():
        prompt = _lock_prompt(name)
        version = _get_version(prompt, number)
        new = _tags(tags, "tags")
        set_change_reason(
            version, f"tags set by {actor.name}: {', '.join(t.name for t in new) or 'none'}", user=actor.person
        )
        version.tags.set(new)
    return version


def validate_content(kind: str, body: Any, config: Any) -> Template:
    """Check a version's content before anything is written."""
    if kind not in PromptKind.values:
        raise InvalidInput(f"type must be 'text' or 'chat', not {kind!r}.", code="invalid_type")
    if not isinstance(config, dict):
        raise InvalidInput("config must be a JSON object.", code="invalid_config")
    model = config.get("model")
    if model is not None and (not isinstance(model, str) or len(model) > MAX_MODEL_CHARS):
        raise InvalidInput(
            f"config.model must be a model name of at most {MAX_MODEL_CHARS} characters.", code="invalid_config"
        )
    template = Template(kind, body)
    try:
        template.validate()
    except TemplateError as exc:
        raise InvalidInput(
            "The template has problems: " + "; ".join(exc.problems),
            code="invalid_template",
            details={"problems": exc.problems},
        ) from None
    size = len(body) if isinstance(body, str) else sum(len(str(m.get("content", ""))) for m in body)
    if size > MAX_BODY_CHARS:
        raise InvalidInput(
            f"The template is {size:,} characters; the limit is {MAX_BODY_CHARS:,}.", code="template_too_long"
        )
    return template


def _prompt_for_publish(name: str, actor: Actor, prompt_type: str | None, description: str | None) -> Prompt:
    try:
        validate_prompt_name(name)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], code="invalid_name") from None
    if prompt_type is not None and prompt_type not in PromptType.values:
        raise InvalidInput(f"prompt type must be one of {', '.join(PromptType.values)}.", code="invalid_prompt_type")
    try:
        with transaction.atomic():
            prompt, created = Prompt.objects.get_or_create(
                name=name,
                defaults={
                    "prompt_type": prompt_type or PromptType.SYSTEM,
                    "description": description or "",
                    "owner": actor.accountable_user,
                },
            )
    except IntegrityError:  # created concurrently by another publisher
        created = False
    prompt = _lock_prompt(name)
    if not created and prompt_type is not None and prompt.prompt_type != prompt_type:
        _set_prompt_type(prompt, prompt_type, actor, "changed with a published version")
    if not created and description is not None and prompt.description != description:
        prompt.description = description
        prompt.save()
    return prompt


@transaction.atomic
def version_publish(
    *,
    name: str,
    kind: str,
    body: Any,
    commit_message: str,
    actor: Actor,
    config: dict[str, Any] | None = None,
    purpose: str = "",
    known_edge_cases: str = "",
    prompt_type: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
    version_tags: list[str] | None = None,
    parent_number: int | None = None,
    expected_latest: int | None = None,
    source_commit: str = "",
    sample_values: dict[str, Any] | None = None,
) -> PromptVersion:
    """Publish a new immutable version (creating the prompt if new), numbered latest + 1.

    `expected_latest` is the newest version number the author saw: if someone
    published since, nothing is saved and Conflict says so.
    """
    actor.require(Scope.WRITE, "Publishing a version")
    config = {} if config is None else config
    # Every input path (dashboard, API, file import, Langfuse routes) comes through here: one line-ending rule.
    body, commit_message, purpose, known_edge_cases, sample_values = normalize_newlines(
        [body, commit_message, purpose or "", known_edge_cases or "", sample_values or {}]
    )
    commit_message = _require_text(commit_message, "A commit message (what changed and why)")
    template = validate_content(kind, body, config)
    prompt = _prompt_for_publish(name, actor, prompt_type, description)
    included = composition.check_body(name, kind, body)
    if prompt.is_retired:
        raise InvalidInput(f"'{name}' is retired; restore it before publishing.", code="prompt_retired")
    latest = prompt.versions.order_by("-number").first()
    latest_number = latest.number if latest else 0
    if expected_latest is not None and expected_latest != latest_number:
        raise Conflict(
            f"'{name}' is now at v{latest_number} (you started from v{expected_latest}); "
            "someone published while you were editing. Review their change, then publish again.",
            code="stale_version",
        )
    parent = _get_version(prompt, parent_number) if parent_number else latest
    version = PromptVersion.objects.create(
        prompt=prompt,
        number=latest_number + 1,
        kind=kind,
        body=body,
        config=config,
        variables=template.variables,
        commit_message=commit_message,
        purpose=purpose,
        known_edge_cases=known_edge_cases,
        content_hash=PromptVersion.hash_content(kind, body, config),
        parent=parent,
        source_commit=source_commit,
        sample_values=sample_values,
        created_by=actor.accountable_user,
        created_by_key=actor.api_key,
    )
    composition.record_inclusions(version, included)
    if tags is not None:
        prompt.tags.set(_tags(tags, "tags"))
    if version_tags:
        version.tags.set(_tags(version_tags, "version_tags"))
    _on_commit_changed(prompt.name)
    event_emit("version.created", prompt, version, actor, commit_message)
    return version


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
    reason = _require_text(reason, "A reason")
    try:
        validate_label_name(label)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], code="invalid_label") from None
    prompt = _lock_prompt(name)
    if prompt.is_retired:
        raise InvalidInput(f"'{name}' is retired; restore it before deploying.", code="prompt_retired")
    target = _get_version(prompt, version)
    current = Label.objects.filter(prompt=prompt, name=label).select_related("version").first()
    current_number = current.version.number if current else None
    if expected_current is not None and current_number != expected_current:
        raise Conflict(
            f"{label} is now v{current_number}, not v{expected_current}: someone else moved it.", code="stale_label"
        )
    if current and current.version_id == target.id:
        raise InvalidInput(f"{label} already points at v{target.number}.", code="no_change")
    composition.check_target(target)
    dependents = composition.affected(prompt.name, label)
    missing = missing_gates(target, label) + composition.move_gates(target, label, dependents)
    if missing and not override:
        raise GateBlocked(
            f"v{target.number} cannot take the {label} label yet: " + "; ".join(missing) + ".",
            details={"missing": missing},
        )
    bypassed = missing if override else []
    return _move(
        prompt, label, current, target, actor, reason, is_rollback=False, bypassed=bypassed, dependents=dependents
    )


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
    dependents: list[composition.Affected],
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
    composition.record_dependent_changes(move, dependents)
    _on_commit_changed(prompt.name)
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
    reason = _require_text(reason, "A reason")
    prompt = _lock_prompt(name)
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
    dependents = composition.affected(prompt.name, label)
    move = _move(prompt, label, current, target, actor, reason, is_rollback=True, bypassed=[], dependents=dependents)
    signals.rolled_back.send(sender=LabelMove, move=move)
    return move


def api_key_issue(*, actor: Actor, name: str, scopes: list[str], gate_override: bool = False) -> tuple[ApiKey, str]:
    """A key owned by the signed-in user (the dashboard's key page): versions published with it are
    theirs. Scopes beyond the user's roles, and gate overrides, are refused; `read` needs any role."""
    user = actor.user
    if user is None or not any(permissions.has_role(user, role) for role in permissions.ROLES):
        raise Forbidden("Issuing an API key needs a role (Author, Reviewer, Deployer or Admin).")
    name = _require_text(name, "A name (what the key is for)")[:100]
    for scope in scopes:  # nobody issues a key stronger than themselves
        if scope in ROLE_FOR_SCOPE and not owner_holds(user, scope):
            raise Forbidden(f"A key with the '{scope}' scope needs the {ROLE_FOR_SCOPE[scope]} role.")
    if gate_override and not permissions.has_role(user, permissions.ADMIN):
        raise Forbidden("A gate-override key bypasses the release gates: only an Admin issues one.")
    try:
        return ApiKey.issue(name=name, scopes=scopes, owner=user, created_by=user, gate_override=gate_override)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], code="invalid_key") from None


@transaction.atomic
def api_key_revoke(*, actor: Actor, key: ApiKey) -> ApiKey:
    """Its owner or an Admin revokes a key; every server refuses it from the next request."""
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    is_owner = actor.user is not None and key.owner_id == actor.user.pk
    if not is_owner:
        actor.require(Scope.ADMIN, "Revoking someone else's API key")
    if key.revoked_at is not None:
        raise InvalidInput(f"API key '{key.name}' is already revoked.", code="invalid_state")
    key.revoked_at = timezone.now()
    set_change_reason(key, f"revoked by {actor.name}")
    key.save(update_fields=["revoked_at"])
    return key


@transaction.atomic
def version_submit_for_review(*, version: PromptVersion, actor: Actor) -> PromptVersion:
    actor.require(Scope.WRITE, "Submitting for review")
    version = PromptVersion.objects.select_for_update().get(pk=version.pk)
    if version.status not in (VersionStatus.DRAFT, VersionStatus.CHANGES_REQUESTED):
        raise InvalidInput(
            f"v{version.number} is {version.get_status_display().lower()}; only drafts can be submitted.",
            code="invalid_state",
        )
    version.status = VersionStatus.IN_REVIEW
    set_change_reason(version, f"submitted for review by {actor.name}", user=actor.person)
    version.save()
    transaction.on_commit(partial(signals.version_submitted.send, sender=PromptVersion, version=version))
    return version


@transaction.atomic
def review_submit(*, version: PromptVersion, actor: Actor, decision: str, comment: str = "") -> Review:
    """Record a review; approvals move the version to approved once the policy's count is met.

    Nobody approves their own change, whatever their role.
    """
    actor.require(REVIEW, "Reviewing")
    if decision not in ReviewDecision.values:
        raise InvalidInput(f"decision must be one of {', '.join(ReviewDecision.values)}.", code="invalid_decision")
    version = PromptVersion.objects.select_for_update().select_related("prompt").get(pk=version.pk)
    if decision != ReviewDecision.COMMENT:
        if version.created_by_id is not None and actor.user is not None and version.created_by_id == actor.user.pk:
            raise Forbidden("You cannot review your own version; ask another reviewer.", code="own_version")
        if version.status != VersionStatus.IN_REVIEW:
            raise InvalidInput(
                f"v{version.number} is not in review ({version.get_status_display().lower()}).", code="invalid_state"
            )
    if decision == ReviewDecision.REQUEST_CHANGES and not comment.strip():
        raise InvalidInput("Say what should change when requesting changes.", code="missing_field")
    review = Review.objects.create(version=version, reviewer=actor.user, decision=decision, comment=comment.strip())
    status = version.status
    if decision == ReviewDecision.REQUEST_CHANGES:
        status = VersionStatus.CHANGES_REQUESTED
    elif decision == ReviewDecision.APPROVE:
        policy = ReviewPolicy.for_type(version.prompt.prompt_type)
        if version.approval_count() >= policy.min_approvals:
            status = VersionStatus.APPROVED
    if status != version.status:
        version.status = status
        set_change_reason(version, f"{review.get_decision_display().lower()} by {actor.name}", user=actor.person)
        version.save()
    if decision != ReviewDecision.COMMENT:
        event_emit("review.decided", version.prompt, review, actor, review.comment)
    return review


@transaction.atomic
def prompt_retire(*, name: str, actor: Actor, reason: str) -> Prompt:
    """Hide a prompt from the default list and from app servers; nothing is deleted."""
    actor.require(Scope.DEPLOY, "Retiring a prompt")
    reason = _require_text(reason, "A reason")
    prompt = _lock_prompt(name)
    if prompt.is_retired:
        raise InvalidInput(f"'{name}' is already retired.", code="invalid_state")
    composition.require_unused(name)
    prompt.retired_at = timezone.now()
    set_change_reason(prompt, f"retired: {reason}")
    prompt.save()
    _on_commit_changed(name)
    event_emit("prompt.retired", prompt, prompt, actor, reason)
    return prompt


@transaction.atomic
def prompt_restore(*, name: str, actor: Actor, reason: str) -> Prompt:
    actor.require(Scope.DEPLOY, "Restoring a prompt")
    reason = _require_text(reason, "A reason")
    prompt = _lock_prompt(name)
    if not prompt.is_retired:
        raise InvalidInput(f"'{name}' is not retired.", code="invalid_state")
    prompt.retired_at = None
    set_change_reason(prompt, f"restored: {reason}")
    prompt.save()
    _on_commit_changed(name)
    event_emit("prompt.restored", prompt, prompt, actor, reason)
    return prompt
