"""A Langfuse-compatible subset of the public API, so the unmodified `langfuse` SDK works.

Paths, bodies and errors follow Langfuse's wire format (`{"message", "error"}`,
no trailing slashes, names URL-encoded with `%2F` for folders), not ours. The
SDK retries 409 and 5xx, so every deterministic refusal is a 400. Writes go
through the registry's services with the key as the actor: the gates apply to
label moves exactly as on `/api/v1` (an `admin` key included); only a key made
with `create_api_key --gate-override` bypasses them, each move recorded as an
override naming the key; every move lands in the deployment log.

Plain function views rather than a second NinjaAPI: the routes are catch-alls
(a decoded `%2F` arrives as `/`) and the error format is not ours. That format (errors, Basic auth,
bodies, the Prompt shape) is `rollout.langfuse_wire`; the routes and what they do are here.
"""

from __future__ import annotations

import math
import re
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt

from promptreg import composition
from promptreg.exceptions import Forbidden, GateBlocked, InvalidInput, NotFound
from promptreg.models import LABEL_RE, LATEST, PRODUCTION, ApiKey, MoveVia, Prompt, PromptVersion, Scope
from promptreg.services import Actor, label_move, version_publish
from rollout import entries, serving
from rollout.langfuse_wire import (
    INVALID_CREDENTIALS,
    PROJECT,
    LangfuseError,
    check_query,
    credentials,
    error_body,
    json_body,
    langfuse_view,
    prompt_json,
    require_scope,
    string_list,
)

DEFAULT_COMMIT_MESSAGE = "Created via the Langfuse API"
MOVE_REASON = "set via Langfuse API"
VERSION_PATH_RE = re.compile(r"^(?P<name>.+)/versions?/(?P<version>\d+)$")


def _fetch_query(request: HttpRequest) -> tuple[str | None, int | None]:
    """The (label, version) a fetch asks for: `production` when it names neither."""
    version, label = request.GET.get("version"), request.GET.get("label")
    if version is not None and label is not None:
        raise LangfuseError(400, "InvalidRequestError", "Send either version or label, not both.")
    if version is None:
        return label or PRODUCTION, None
    if not version.isdigit() or int(version) < 1:
        raise LangfuseError(400, "InvalidRequestError", f"version must be a positive integer, not {version!r}.")
    return None, int(version)


def _resolve(name: str, label: str | None, version: int | None) -> entries.Entry:
    """The fetch's answer from the database, an error included (cached like any other answer)."""
    prompt = Prompt.objects.active().filter(name=name).first()
    if version is not None:
        found = prompt.versions.filter(number=version).first() if prompt else None
        missing = f"Prompt not found: '{name}' with version {version}"
    else:
        assert label is not None, "a fetch names a label or a version (_fetch_query)"
        found = prompt.label_version(label) if prompt and (label == LATEST or LABEL_RE.match(label)) else None
        missing = f"Prompt not found: '{name}' with label '{label}'"
    if found is None or prompt is None:
        return entries.encode({"message": missing, "error": "LangfuseNotFoundError"}, 404)
    found.prompt = prompt  # already loaded: saves a query per fetch
    try:
        resolved = composition.resolve(found)
    except composition.CompositionError as exc:
        # A 400, like every deterministic refusal here: the SDK retries a 409.
        return entries.encode(
            {"message": f"'{name}' cannot be served: {exc.message}", "error": "InvalidRequestError"}, 400
        )
    return entries.encode(prompt_json(found, resolved=resolved))


@csrf_exempt
def _fetch(request: HttpRequest, name: str) -> HttpResponse:
    """`GET …/{name}`: from the serving cache (`rollout.serving`), like `/api/v1`'s fetch, with the
    key's verdict checked in the same look-up; the Basic auth's public id must be the key's."""
    try:
        public_id, secret = credentials(request)
        check_query(request)
        label, version = _fetch_query(request)
        verdict, entry = serving.fetch(secret, name, label, version, resolver=_resolve, view="lf:")
        if verdict[:1] == entries.UNKNOWN_KEY or verdict[1:] != public_id.encode():
            raise INVALID_CREDENTIALS
        if verdict[:1] == entries.NO_READ:
            raise LangfuseError(
                403, "AccessDeniedError", "Fetching a prompt needs the 'read' scope; this key lacks it."
            )
    except LangfuseError as exc:
        return error_body(exc.status, exc.error, exc.message)
    assert entry is not None, "a key that may read gets an entry"
    return HttpResponse(entry.body, status=entry.status, content_type="application/json")


def _set_label(key: ApiKey, name: str, label: str, number: int) -> None:
    """Point `label` at version `number` through the gated service (a no-op if it already does).

    A move the key's scope or the gates refuse is a 400 naming the missing gates,
    so the SDK does not retry it. There is no override flag in Langfuse's API, so
    no key bypasses a gate here except a gate-override key (`label_move` records it).
    """
    current = Prompt.objects.get(name=name).label_version(label)
    if current is not None and current.number == number:
        return
    try:
        label_move(
            name=name,
            label=label,
            version=number,
            actor=Actor(via=MoveVia.API, api_key=key),
            reason=MOVE_REASON,
        )
    except Forbidden as exc:
        raise LangfuseError(400, "AccessDeniedError", f"Label '{label}' was not set: {exc.message}") from None
    except GateBlocked as exc:
        raise LangfuseError(400, "GateBlockedError", f"Label '{label}' was not set: {exc.message}") from None


@transaction.atomic
def _create(key: ApiKey, data: dict[str, Any]) -> PromptVersion:
    """Publish a version and set its labels, all or nothing."""
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise LangfuseError(400, "InvalidRequestError", "name is required.")
    kind = data.get("type") or "text"
    config = data.get("config")
    commit_message = data.get("commitMessage")
    if commit_message is not None and not isinstance(commit_message, str):
        raise LangfuseError(400, "InvalidRequestError", "commitMessage must be a string.")
    labels = [label for label in string_list(data.get("labels"), "labels") if label != LATEST]
    tags = data.get("tags")
    version = version_publish(
        name=name,
        kind=kind,
        body=data.get("prompt"),
        config={} if config is None else config,
        commit_message=commit_message or DEFAULT_COMMIT_MESSAGE,
        tags=None if tags is None else string_list(tags, "tags"),
        actor=Actor(via=MoveVia.API, api_key=key),
    )
    if version.parent is not None and version.parent.kind != version.kind:
        raise InvalidInput(
            f"'{name}' is a {version.parent.kind} prompt; a new version cannot change its type to {version.kind}."
        )
    for label in labels:
        _set_label(key, name, label, version.number)
    return version


@transaction.atomic
def _add_labels(key: ApiKey, name: str, number: int, new_labels: list[str]) -> PromptVersion:
    if LATEST in new_labels:
        raise LangfuseError(400, "InvalidRequestError", "'latest' is reserved: it always points at the newest version.")
    prompt = Prompt.objects.active().filter(name=name).first()
    version = prompt.versions.filter(number=number).first() if prompt else None
    if version is None:
        raise NotFound(f"Prompt not found: {name} version {number}")
    for label in new_labels:
        _set_label(key, name, label, number)
    return version


def _list(request: HttpRequest) -> dict[str, Any]:
    params = request.GET
    try:
        page = max(int(params.get("page") or 1), 1)
        limit = min(max(int(params.get("limit") or 50), 1), 100)
    except ValueError:
        raise LangfuseError(400, "InvalidRequestError", "page and limit must be integers.") from None
    prompts = Prompt.objects.active().filter(versions__isnull=False).distinct().prefetch_related("tags", "labels")
    if params.get("name"):
        prompts = prompts.filter(name=params["name"])
    if params.get("label"):
        prompts = prompts.filter(labels__name=params["label"]) if params["label"] != LATEST else prompts
    if params.get("tag"):
        prompts = prompts.filter(tags__name=params["tag"])
    total = prompts.count()
    data = []
    for prompt in prompts[(page - 1) * limit : page * limit]:
        versions = list(prompt.versions.order_by("number").values_list("number", "config", "created_at", "kind"))
        data.append(
            {
                "name": prompt.name,
                "type": versions[-1][3],
                "versions": [v[0] for v in versions],
                "labels": sorted({label.name for label in prompt.labels.all()} | {LATEST}),
                "tags": sorted(tag.name for tag in prompt.tags.all()),
                "lastUpdatedAt": versions[-1][2].isoformat(),
                "lastConfig": versions[-1][1],
            }
        )
    return {
        "data": data,
        "meta": {"page": page, "limit": limit, "totalItems": total, "totalPages": math.ceil(total / limit)},
    }


@langfuse_view(("GET", "POST"))
def prompts(request: HttpRequest, key: ApiKey) -> JsonResponse:
    """`GET` lists prompts, `POST` creates a version (the prompt too, if new)."""
    if request.method == "POST":
        version = _create(key, json_body(request))
        return JsonResponse(prompt_json(version), status=201)
    require_scope(key, Scope.READ, "Listing prompts")
    return JsonResponse(_list(request))


@csrf_exempt
def prompt_detail(request: HttpRequest, rest: str) -> HttpResponse:
    """`GET …/{name}` fetches; `PATCH …/{name}/versions/{n}` adds labels to a version.

    The server has already decoded `%2F`, so `rest` is the whole name, slashes
    included; only a PATCH treats a `/versions/N` suffix as the version.
    """
    if request.method == "GET":
        return _fetch(request, rest)
    return _label_version(request, rest)


@langfuse_view(("GET", "PATCH"))
def _label_version(request: HttpRequest, key: ApiKey, rest: str) -> JsonResponse:
    match = VERSION_PATH_RE.match(rest)
    if match is None:
        raise LangfuseError(
            405, "MethodNotAllowedError", "PATCH goes to /api/public/v2/prompts/{name}/versions/{version}."
        )
    new_labels = string_list(json_body(request).get("newLabels"), "newLabels")
    version = _add_labels(key, match["name"], int(match["version"]), new_labels)
    return JsonResponse(prompt_json(version))


@langfuse_view(("GET",))
def projects(request: HttpRequest, key: ApiKey) -> JsonResponse:
    """What `Langfuse.auth_check()` calls: one project, the registry itself."""
    return JsonResponse({"data": [PROJECT]})


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    return error_body(
        404,
        "LangfuseNotFoundError",
        f"promptreg implements only the prompts part of the Langfuse API; nothing at {request.path}.",
    )


# Included under `api/public/` by the root URLconf. No trailing slashes, as the SDK sends them.
urlpatterns = [
    re_path(r"^v2/prompts$", prompts, name="langfuse-prompts"),
    re_path(r"^v2/prompts/(?P<rest>.+)$", prompt_detail, name="langfuse-prompt"),
    re_path(r"^projects$", projects, name="langfuse-projects"),
    re_path(r"^(?P<rest>.*)$", not_found),
]
