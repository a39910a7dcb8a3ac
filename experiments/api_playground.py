"""`POST /api/v1/prompts/{name}/run`: run a version on variables against the provider, synchronously (mounted under
/api/v1/ by rollout.api, before the prompts router whose `/prompts/{name}` takes folder names)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Router, Schema

from experiments.llm import ProviderError, ProviderTimeout
from experiments.playground import playground_run
from promptreg.api_auth import ApiKeyAuth
from promptreg.exceptions import InvalidInput, NotFound, RegistryError
from promptreg.models import PRODUCTION, Prompt

router = Router(tags=["playground"])
ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}  # see rollout.api_base


class ProviderFailed(RegistryError):
    code = "provider_error"
    status = 502


class ProviderTimedOut(RegistryError):
    code = "provider_timeout"
    status = 504


class TooManyRuns(RegistryError):
    code = "too_many_runs"
    status = 429


_running = 0
_running_lock = threading.Lock()


@contextmanager
def _run_slot() -> Iterator[None]:
    """At most PLAYGROUND_API_CONCURRENCY runs at once per process: a run holds a web thread for up to
    PLAYGROUND_TIMEOUT, and the threads it leaves are the ones app servers' fetches are served by."""
    global _running
    with _running_lock:
        if _running >= settings.PLAYGROUND_API_CONCURRENCY:
            raise TooManyRuns(
                f"This server is already running {_running} playground run(s), its limit; try again in a few seconds."
            )
        _running += 1
    try:
        yield
    finally:
        with _running_lock:
            _running -= 1


class RunIn(Schema):
    version: int | None = Field(None, ge=1, description="A version number; or send `label`.")
    label: str | None = Field(None, description="A label (default `production`; `latest` is the newest version).")
    variables: dict[str, Any] = Field(default_factory=dict, examples=[{"customer_name": "Ada"}])
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the version's config for this run: model and request parameters.",
        examples=[{"temperature": 0}],
    )


class UsageOut(Schema):
    input_tokens: int | None
    output_tokens: int | None


class RunOut(Schema):
    output: str
    model: str
    latency_ms: float
    usage: UsageOut
    cost_usd: float | None = Field(description="Only when LLM_PRICES has the model's price.")
    version: int


@router.post(
    "/prompts/{path:name}/run",
    auth=ApiKeyAuth("write"),
    response={200: RunOut},
    openapi_extra={
        "responses": {
            400: {
                "description": "`invalid_variables` (a variable missing, or not text, a number or true/false — the "
                "message names it) or `invalid_config` (a setting that cannot be overridden, or a value out of "
                "range: temperature 0–2, top_p 0–1, max_tokens 1–1,000,000, seed a 64-bit integer, penalties −2–2).",
                "content": ERROR,
            },
            502: {"description": "`provider_error`: the provider failed; the message says how.", "content": ERROR},
            503: {
                "description": "`provider_not_configured`: no provider is set; the message says where an Admin "
                "sets it.",
                "content": ERROR,
            },
            504: {"description": "`provider_timeout`: no answer within PLAYGROUND_TIMEOUT.", "content": ERROR},
            429: {
                "description": "`too_many_runs`: this server process runs PLAYGROUND_API_CONCURRENCY runs already.",
                "content": ERROR,
            },
        }
    },
    summary="Run a version on variables against the provider (synchronous; nothing is recorded)",
    description="One call, no retries, bounded by PLAYGROUND_TIMEOUT: 504 `provider_timeout` when it runs out, "
    "502 `provider_error` with the provider's failure as a sentence (its address shown as scheme://host:port only), "
    "503 `provider_not_configured` when no provider is set. Variables are text, numbers or true/false (a chat "
    "placeholder takes a list of messages).",
)
def prompt_run(request: HttpRequest, name: str, body: RunIn):
    prompt = Prompt.objects.filter(name=name).first()
    if prompt is None:
        raise NotFound(f"No prompt named '{name}'.", code="prompt_not_found")
    if body.version is not None and body.label is not None:
        raise InvalidInput("Send either 'version' or 'label', not both.")
    if body.version is not None:
        version = prompt.versions.filter(number=body.version).first()
        if version is None:
            raise NotFound(f"'{prompt.name}' has no version {body.version}.", code="version_not_found")
    else:
        label = body.label or PRODUCTION
        version = prompt.label_version(label)
        if version is None:
            raise NotFound(f"'{prompt.name}' has no label '{label}'.", code="label_not_found")
    version.prompt = prompt
    try:
        with _run_slot():
            result = playground_run(version=version, variables=body.variables, overrides=body.config)
    except ProviderTimeout as exc:
        raise ProviderTimedOut(str(exc)) from None
    except ProviderError as exc:
        raise ProviderFailed(str(exc)) from None
    return result.to_dict()
