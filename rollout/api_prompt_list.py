"""`GET /api/v1/prompts`: the catalogue, searched, filtered and paged, for scripts and CI."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from promptreg.api_auth import ApiKeyAuth
from promptreg.exceptions import InvalidInput
from promptreg.models import Label, Prompt, PromptKind, PromptType, Scope

router = Router(tags=["prompts"])

MAX_LIMIT = 100


class PromptListQuery(Schema):
    search: str = Field("", max_length=200, description="Part of the name or description (case-insensitive).")
    tag: str = Field("", max_length=64, description="Prompts with this tag.")
    type: str = Field(
        "",
        description="`text` or `chat` (the newest version's form), or a prompt type (`system`, `rag-query`, …).",
        examples=["chat"],
    )
    label: str = Field("", max_length=63, description="Prompts that have this label (e.g. `production`).")
    page: int = Field(1, ge=1, le=1_000_000)
    limit: int = Field(50, ge=1, le=MAX_LIMIT)


class PromptSummary(Schema):
    name: str = Field(examples=["customer-support-system"])
    type: Literal["text", "chat"] | None = Field(
        description="The newest version's form; null before the first version."
    )
    prompt_type: str = Field(examples=["system"])
    tags: list[str] = Field(examples=[["support"]])
    labels: dict[str, int] = Field(description="Each label and the version it points at.", examples=[{"production": 5}])
    latest_version: int | None = Field(examples=[6])
    updated_at: datetime = Field(description="The newest version or label move.")


class PageMeta(Schema):
    page: int
    limit: int
    total: int


class PromptListOut(Schema):
    data: list[PromptSummary]
    meta: PageMeta


def _type_filters(value: str) -> dict[str, str]:
    if not value:
        return {}
    if value in PromptKind.values:
        return {"kind": value}
    if value in PromptType.values:
        return {"prompt_type": value}
    choices = ", ".join([*PromptKind.values, *PromptType.values])
    raise InvalidInput(f"type: '{value}' is none of {choices}.", code="invalid_type")


@router.get(
    "/prompts",
    auth=ApiKeyAuth(Scope.READ),
    response=PromptListOut,
    summary="List prompts",
    description="Active (not retired) prompts by name, filtered and paged; `meta.total` counts every match.",
)
def prompt_list(request: HttpRequest, query: Query[PromptListQuery]):
    prompts = Prompt.objects.active().matching(
        search=query.search.strip(), tag=query.tag, label=query.label.strip(), **_type_filters(query.type.strip())
    )
    total = prompts.count()
    start = (query.page - 1) * query.limit
    # Prompts with the catalogue fields annotated (newest_kind, newest_number, changed_at)
    page: list[Any] = list(
        prompts.with_catalogue_fields().prefetch_related("tags").order_by("name")[start : start + query.limit]
    )
    labels: dict[int, dict[str, int]] = {p.pk: {} for p in page}
    for prompt_id, name, number in Label.objects.filter(prompt__in=page).values_list(
        "prompt_id", "name", "version__number"
    ):
        labels[prompt_id][name] = number
    return {
        "data": [
            {
                "name": p.name,
                "type": p.newest_kind,
                "prompt_type": p.prompt_type,
                "tags": [t.name for t in p.tags.all()],
                "labels": labels[p.pk],
                "latest_version": p.newest_number,
                "updated_at": p.changed_at,
            }
            for p in page
        ],
        "meta": {"page": query.page, "limit": query.limit, "total": total},
    }
