"""`/api/v1/prompts/…`: fetch the live version, publish versions, move labels, roll back.

The writes go through the registry's services like every other entry point.
The fetch is served by the plain view in `rollout.views_fetch` (the hot path,
routed ahead of this API); its operation here documents it for the OpenAPI
document and behaves the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from promptreg import composition_moves, services
from promptreg.api_auth import ApiKeyAuth, api_actor
from promptreg.models import PRODUCTION, LabelMove, Scope
from rollout import entries, views_fetch

router = Router(tags=["prompts"])


# --- Schemas (also the OpenAPI document) -------------------------------------------


class ErrorDetail(Schema):
    code: str = Field(examples=["label_not_found"])
    message: str = Field(examples=["'customer-support-system' has no label 'canary'."])


class ErrorOut(Schema):
    """Every error: a machine-readable code and a sentence for people (some carry more fields)."""

    error: ErrorDetail


class ExperimentRef(Schema):
    id: int
    variant: Literal["control", "treatment"]


MESSAGE_EXAMPLE: list[Any] = [
    {"role": "system", "content": "You are the support assistant for {{ company }}. Answer concisely."},
    {"type": "placeholder", "name": "history"},
    {"role": "user", "content": "{{ question }}"},
]


class DependencyOut(Schema):
    name: str = Field(examples=["company-voice"])
    version: int = Field(examples=[3])
    label: str | None = Field(description="null when included by version number.", examples=["production"])


class DependentOut(Schema):
    name: str = Field(examples=["customer-support-system"])
    label: str = Field(description="The dependent's label whose text changed.", examples=["production"])
    version: int = Field(examples=[7])
    gated: bool = Field(description="Whether that label is gated for the dependent.")


class PromptOut(Schema):
    name: str = Field(examples=["customer-support-system"])
    version: int = Field(examples=[5])
    label: str | None = Field(
        description="The label asked for; null when a version number was asked for.", examples=["production"]
    )
    type: Literal["text", "chat"]
    prompt: str | list[dict[str, Any]] = Field(
        description="Text with `{{ variable }}` placeholders, or chat messages and `{type: placeholder, name}` slots.",
        examples=["You are the support assistant for {{ company }}. Answer concisely."],
    )
    config: dict[str, Any] = Field(examples=[{"model": "gpt-4o-mini", "temperature": 0.2}])
    variables: list[str] = Field(examples=[["company"]])
    experiment: ExperimentRef | None = Field(
        description="Set when an A/B experiment chose this version for the session."
    )
    dependencies: list[DependencyOut] = Field(
        description="The prompts this one includes (`@@@langfusePrompt:name=…|label=…@@@`), nested ones too, as "
        "resolved for this answer; `prompt` and `variables` are the resolved text's."
    )
    labels: list[str] = Field(description="Every label pointing at this version.", examples=[["production", "staging"]])
    prompt_type: str = Field(examples=["system"])
    commit_message: str = Field(examples=["Answer concisely: users skim."])
    created_at: datetime


class VersionIn(Schema):
    type: Literal["text", "chat"] = Field("text", description="`text` or `chat`.")
    prompt: str | list[dict[str, Any]] = Field(examples=["Summarise the ticket for {{ customer }} in two sentences."])
    config: dict[str, Any] = Field(default_factory=dict, examples=[{"model": "gpt-4o-mini", "temperature": 0.2}])
    commit_message: str = Field(description="What changed and why.", examples=["Shorter answers: users skim."])
    prompt_type: Literal["system", "rag-query", "extraction", "agent-planning", "output-format"] | None = Field(
        None, description="Set on the prompt (it decides the review policy); defaults to `system` for a new prompt."
    )
    description: str | None = None
    purpose: str = ""
    known_edge_cases: str = ""
    tags: list[str] | None = Field(None, description="The prompt's tags (replaces them when given).")
    version_tags: list[str] | None = Field(None, description="This version's own tags.", examples=[["legal-approved"]])

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "type": "text",
                    "prompt": "You are the support assistant for {{ company }}.",
                    "config": {"temperature": 0.2},
                    "commit_message": "First version",
                },
                {"type": "chat", "prompt": MESSAGE_EXAMPLE, "config": {}, "commit_message": "Chat form with history"},
            ]
        }
    }


class LabelMoveIn(Schema):
    version: int = Field(ge=1, examples=[5])
    reason: str = Field(description="Why: recorded in the deployment log.", examples=["Approved and eval passed"])
    override: bool = Field(
        False, description="Bypass the promotion gates (needs an `admin` key); recorded as an override."
    )


class RollbackIn(Schema):
    reason: str = Field(examples=["Quality score dropped after v6"])
    label: str = Field(PRODUCTION, description="The label to roll back; production unless told.")
    expected_current: int | None = Field(
        None,
        ge=1,
        examples=[6],
        description="The version you believe is live. If the label points elsewhere (someone already rolled back), "
        "nothing moves and the answer is 409 `stale_expectation`. Scripts should always send it.",
    )


class MoveOut(Schema):
    id: int
    name: str = Field(examples=["customer-support-system"])
    label: str = Field(examples=["production"])
    version: int = Field(description="The version the label now points at.", examples=[4])
    previous_version: int | None = Field(examples=[5])
    is_rollback: bool
    is_override: bool
    bypassed_gates: list[str]
    reason: str
    via: str = Field(examples=["api"])
    actor: str = Field(examples=["API key deploy-pipeline"])
    created_at: datetime
    dependents: list[DependentOut] = Field(
        description="Prompts that include this one at the moved label: their served text changed with it."
    )
    impact: str = Field(
        description="The dependents in words; empty when none.",
        examples=[
            "2 prompts include this at production: faq-answer (production v4, gated), refund-system (latest v2)."
        ],
    )


ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 413: ErrorOut}


def move_out(move: LabelMove) -> dict[str, Any]:
    dependents = composition_moves.move_dependents(move)
    return {
        "id": move.id,
        "name": move.prompt.name,
        "label": move.label,
        "version": move.to_version.number,
        "previous_version": move.from_version.number if move.from_version is not None else None,
        "is_rollback": move.is_rollback,
        "is_override": move.is_override,
        "bypassed_gates": move.bypassed_gates,
        "reason": move.reason,
        "via": move.via,
        "actor": move.actor_name,
        "created_at": move.created_at,
        "dependents": dependents,
        "impact": composition_moves.impact(move.label, dependents),
    }


# --- Writes (services do the work and the permission checks) -------------------------
# Registered before the fetch so that `…/versions`, `…/labels/x` and `…/rollback`
# are never read as part of a folder-style prompt name.


@router.post(
    "/prompts/{prompt:name}/versions",
    auth=ApiKeyAuth(Scope.WRITE),
    response={201: PromptOut, **ERRORS},
    summary="Publish a new version",
    description=(
        "Creates the prompt if it is new. Versions are immutable and numbered 1, 2, 3… per prompt; one published "
        "with a key is authored by the key's owner. A `prompt_type` other than the prompt's current type is a policy "
        "change: 403 `policy_change_requires_admin` unless the key has the `admin` scope."
    ),
)
def publish_version(request: HttpRequest, name: str, body: VersionIn):
    version = services.version_publish(
        name=name,
        kind=body.type,
        body=body.prompt,
        config=body.config,
        commit_message=body.commit_message,
        prompt_type=body.prompt_type,
        description=body.description,
        purpose=body.purpose,
        known_edge_cases=body.known_edge_cases,
        tags=body.tags,
        version_tags=body.version_tags,
        actor=api_actor(request),
    )
    return Status(201, entries.payload(version, None))


class VersionTagsIn(Schema):
    tags: list[str] = Field(description="The version's tags, replacing the ones it has; `[]` removes them all.")


class VersionTagsOut(Schema):
    name: str = Field(examples=["customer-support-system"])
    version: int = Field(examples=[2])
    tags: list[str] = Field(examples=[["legal-approved"]])


@router.put(
    "/prompts/{prompt:name}/versions/{number}/tags",
    auth=ApiKeyAuth(Scope.WRITE),
    response={200: VersionTagsOut, **ERRORS},
    summary="Set a version's tags",
    description="Tags are metadata: setting them never changes the version's content, and the change is in its "
    "history.",
)
def set_version_tags(request: HttpRequest, name: str, number: int, body: VersionTagsIn):
    version = services.version_tags_set(name=name, number=number, tags=body.tags, actor=api_actor(request))
    return {"name": name, "version": version.number, "tags": sorted(t.name for t in version.tags.all())}


@router.post(
    "/prompts/{prompt:name}/labels/{label}",
    auth=ApiKeyAuth(Scope.DEPLOY),
    response={200: MoveOut, **ERRORS, 409: ErrorOut},
    summary="Move a label to a version",
    description=(
        "A protected label (`production`, and any in PROTECTED_LABELS or the prompt type's policy) is gated by the "
        "review policy: a 400 with code `gate_blocked` names each missing gate in `error.missing`. `override: true` "
        "with an `admin` key bypasses the gates and records it; a gate-override key's moves always do, recorded."
    ),
)
def move_label(request: HttpRequest, name: str, label: str, body: LabelMoveIn):
    move = services.label_move(
        name=name,
        label=label,
        version=body.version,
        reason=body.reason,
        override=body.override,
        actor=api_actor(request),
    )
    return move_out(move)


@router.post(
    "/prompts/{prompt:name}/rollback",
    auth=ApiKeyAuth(Scope.DEPLOY),
    response={200: MoveOut, **ERRORS, 409: ErrorOut},
    summary="Roll production back",
    description=(
        "Moves the label back to the version that was live before the current one, walking back through its "
        "history (never to a version it was rolled back from). 400 `nothing_to_roll_back` when none is left. "
        "Pin it with `expected_current`: unpinned, three concurrent rollbacks walk the label back three versions."
    ),
)
def rollback(request: HttpRequest, name: str, body: RollbackIn):
    move = services.rollback(
        name=name,
        label=body.label,
        reason=body.reason,
        expected_current=body.expected_current,
        actor=api_actor(request),
    )
    return move_out(move)


# --- The fetch (hot path) -----------------------------------------------------------


class DocumentedBearer(ApiKeyAuth):
    """Declares Bearer auth for the fetch in the OpenAPI document; the fetch view checks the key
    itself, in the same Redis round trip as the cached entry."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:  # ninja only asks whether it is truthy
        return token or None


class FetchQuery(Schema):
    label: str | None = Field(None, description="Default `production`; `latest` is the newest version.")
    version: int | None = Field(None, ge=1, description="A version number instead of a label.")
    session_id: str | None = Field(
        None, max_length=256, description="Your user's session: picks the variant when an experiment runs."
    )


@router.get(
    "/prompts/{prompt:name}",
    auth=DocumentedBearer(Scope.READ),
    response={200: PromptOut, 304: None, **ERRORS, 409: ErrorOut, 410: ErrorOut},
    summary="Fetch a prompt",
    description=(
        "The version a label points at (`production` by default) or a given version. Send the `ETag` back as "
        "`If-None-Match` to get a 304 while it is unchanged. A retired prompt answers 410 `prompt_retired`; one whose "
        "includes no longer resolve, 409 `dependency_unresolved`."
    ),
)
def fetch_prompt(request: HttpRequest, name: str, query: Query[FetchQuery]):
    # Requests normally reach `views_fetch.fetch_prompt` directly (routed ahead of the API
    # for speed); this operation describes it and answers the same way if reached.
    return views_fetch.fetch_prompt(request, name)
