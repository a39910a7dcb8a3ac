"""Production samples of a prompt (`GET /api/v1/prompts/{name}/samples`) and its sampling policy (`…/sampling`)."""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from experiments import samples
from promptreg.api_auth import ApiKeyAuth, api_actor
from promptreg.exceptions import NotFound
from promptreg.models import Prompt, PromptVersion, Scope
from rollout.models import METRICS

router = Router(tags=["samples"])
MAX_LIMIT = 200


class SamplesQuery(Schema):
    version: int | None = Field(None, ge=1, description="Only this version's samples.")
    metric: str = Field("", max_length=64, description="Order by (and keep only samples with) this metric.")
    order: Literal["worst", "best", "recent"] = Field("recent", description="`worst`/`best` need a metric.")
    limit: int = Field(20, ge=1, le=MAX_LIMIT)


class SamplingIn(Schema):
    # strict: `true`, "0.5" or 7.0 are refused, not read as 1.0, 0.5 or 7
    rate: float = Field(strict=True, description="The share of posted samples kept, 0 to 1.")
    retention_days: int | None = Field(
        None, strict=True, description="Days kept; null: the server's SAMPLE_RETENTION_DAYS."
    )


def _prompt(name: str) -> Prompt:
    prompt = Prompt.objects.filter(name=name).first()
    if prompt is None:
        raise NotFound(f"No prompt named '{name}'.", code="prompt_not_found")
    return prompt


def _version(prompt: Prompt, number: int | None) -> PromptVersion | None:
    if number is None:
        return None
    version = prompt.versions.filter(number=number).first()
    if version is None:
        raise NotFound(f"'{prompt.name}' has no version {number}.", code="version_not_found")
    return version


@router.get(
    "/prompts/{prompt:name}/samples",
    auth=ApiKeyAuth(Scope.READ),
    response=dict,
    summary="Production samples with their scores",
    description="`order=worst` lists the lowest values of `metric` first (the highest, for latency and cost).",
)
def samples_list(request: HttpRequest, name: str, query: Query[SamplesQuery]):
    prompt = _prompt(name)
    spec = METRICS.get(query.metric)
    found = samples.samples_of(
        prompt=prompt,
        version=_version(prompt, query.version),
        metric=query.metric,
        order=query.order,
        lower_is_better=spec is not None and not spec.higher_is_better,
        limit=query.limit,
    )
    return {"data": [view.to_dict() for view in found]}


@router.get(
    "/prompts/{prompt:name}/sampling", auth=ApiKeyAuth(Scope.READ), response=dict, summary="The sampling policy"
)
def sampling_get(request: HttpRequest, name: str):
    return samples.sampling_dict(_prompt(name))


@router.put(
    "/prompts/{prompt:name}/sampling",
    auth=ApiKeyAuth(Scope.DEPLOY),
    response=dict,
    summary="Set the share of samples kept and their retention",
)
def sampling_put(request: HttpRequest, name: str, body: SamplingIn):
    prompt = _prompt(name)
    samples.sampling_configure(
        prompt=prompt, actor=api_actor(request), rate=body.rate, retention_days=body.retention_days
    )
    return samples.sampling_dict(prompt)
