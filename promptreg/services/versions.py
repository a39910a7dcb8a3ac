"""Publishing versions (immutable, numbered without gaps), their content checks, and their tags."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from promptreg import composition
from promptreg.exceptions import Conflict, InvalidInput
from promptreg.history import set_change_reason
from promptreg.models import (
    Prompt,
    PromptKind,
    PromptType,
    PromptVersion,
    Scope,
    Tag,
    validate_prompt_name,
)
from promptreg.services.base import Actor, event_emit, get_version, lock_prompt, on_commit_changed, require_text
from promptreg.services.policy import set_prompt_type
from promptreg.templating import MAX_BODY_CHARS, Template, TemplateError, normalize_newlines

MAX_MODEL_CHARS = 200  # what evaluation runs record of `config.model`


def tags_named(names: list[str], field: str) -> list[Tag]:
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
        prompt = lock_prompt(name)
        version = get_version(prompt, number)
        new = tags_named(tags, "tags")
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


def prompt_for_publish(name: str, actor: Actor, prompt_type: str | None, description: str | None) -> Prompt:
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
    prompt = lock_prompt(name)
    if not created and prompt_type is not None and prompt.prompt_type != prompt_type:
        set_prompt_type(prompt, prompt_type, actor, "changed with a published version")
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
    commit_message = require_text(commit_message, "A commit message (what changed and why)")
    template = validate_content(kind, body, config)
    prompt = prompt_for_publish(name, actor, prompt_type, description)
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
    parent = get_version(prompt, parent_number) if parent_number else latest
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
        prompt.tags.set(tags_named(tags, "tags"))
    if version_tags:
        version.tags.set(tags_named(version_tags, "version_tags"))
    on_commit_changed(prompt.name)
    event_emit("version.created", prompt, version, actor, commit_message)
    return version
