"""A Langfuse-compatible subset of the public API, so the unmodified `langfuse` SDK works.

Paths, bodies and errors follow Langfuse's wire format (`{"message", "error"}`,
no trailing slashes, names URL-encoded with `%2F` for folders), not ours. The
SDK retries 409 and 5xx, so every deterministic refusal is a 400. Writes go
through the registry's services with the key as the actor: the gates apply to
label moves exactly as on `/api/v1` (an `admin` key included); only a key made
with `create_api_key --gate-override` bypasses them, each move recorded as an
override naming the key; every move lands in the deployment log.

Plain function views rather than a second NinjaAPI: the routes are catch-alls
(a decoded `%2F` arrives as `/`) and the error format is not ours.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt

from promptreg import composition
from promptreg.exceptions import Forbidden, GateBlocked, InvalidInput, NotFound, RegistryError
from promptreg.models import LABEL_RE, LATEST, PRODUCTION, ApiKey, MoveVia, Prompt, PromptVersion, Scope
from promptreg.services import Actor, label_move, version_publish
from promptreg.storable import parse_json, unstorable_text
from rollout import entries, serving

DEFAULT_COMMIT_MESSAGE = "Created via the Langfuse API"
MOVE_REASON = "set via Langfuse API"
VERSION_PATH_RE = re.compile(r"^(?P<name>.+)/versions?/(?P<version>\d+)$")
PROJECT = {
    "id": "promptreg",
    "name": "promptreg",
    "organization": {"id": "promptreg", "name": "promptreg"},
    "metadata": {},
}


class LangfuseError(Exception):
    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def _error_body(status: int, error: str, message: str) -> JsonResponse:
    return JsonResponse({"message": message, "error": error}, status=status)


def _registry_error(exc: RegistryError) -> JsonResponse:
    if isinstance(exc, NotFound):
        return _error_body(404, "LangfuseNotFoundError", exc.message)
    if isinstance(exc, Forbidden):
        return _error_body(403, "AccessDeniedError", exc.message)
    # Conflicts (409 in our own API) are 400 here: the SDK retries a 409.
    error = "GateBlockedError" if isinstance(exc, GateBlocked) else "InvalidRequestError"
    return _error_body(400, error, exc.message)


INVALID_CREDENTIALS = LangfuseError(
    401, "UnauthorizedError", "Invalid credentials: unknown public key, wrong secret, or a revoked key."
)


def _credentials(request: HttpRequest) -> tuple[str, str]:
    """HTTP Basic: the key's public id as user name, its secret as password."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise LangfuseError(
            401, "UnauthorizedError", "Send an API key as HTTP Basic auth: public id as user, secret as password."
        )
    try:
        public_id, _, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise LangfuseError(401, "UnauthorizedError", "The Authorization header is not valid Basic auth.") from None
    return public_id, secret


def _authenticate(request: HttpRequest) -> ApiKey:
    key = ApiKey.find_pair(*_credentials(request))
    if key is None:
        raise INVALID_CREDENTIALS
    return key


def _check_query(request: HttpRequest) -> None:
    problem = unstorable_text(request.path, "the path") or unstorable_text(request.GET.dict(), "the query")
    if problem:
        raise LangfuseError(400, "InvalidRequestError", problem + ".")


def langfuse_view(methods: tuple[str, ...]) -> Callable:
    """Authenticate, allow `methods`, and turn every failure into a Langfuse error body."""

    def decorator(view: Callable) -> Callable:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            try:
                if request.method not in methods:
                    raise LangfuseError(
                        405,
                        "MethodNotAllowedError",
                        f"{request.method} is not allowed here; use {' or '.join(methods)}.",
                    )
                key = _authenticate(request)
                _check_query(request)
                return view(request, key, *args, **kwargs)
            except LangfuseError as exc:
                return _error_body(exc.status, exc.error, exc.message)
            except RegistryError as exc:
                return _registry_error(exc)

        return wrapper

    return decorator


def _require_scope(key: ApiKey, scope: str, action: str) -> None:
    problem = key.scope_problem(scope)
    if problem:
        raise LangfuseError(403, "AccessDeniedError", f"{action}: {problem}")


def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = parse_json(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise LangfuseError(400, "InvalidRequestError", "The request body is not valid JSON.") from None
    except ValueError as exc:
        raise LangfuseError(400, "InvalidRequestError", f"{exc}.") from None
    if not isinstance(data, dict):
        raise LangfuseError(400, "InvalidRequestError", "The request body must be a JSON object.")
    return data


def _string_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LangfuseError(400, "InvalidRequestError", f"{field} must be a list of strings.")
    return list(dict.fromkeys(value))


def _latest_number(prompt: Prompt) -> int:
    latest = prompt.latest_version()
    return latest.number if latest else 0


def _message(message: dict[str, Any]) -> dict[str, Any]:
    # The SDK rejects `"type": "message"`; plain messages go out without a type.
    if message.get("type") == "placeholder":
        return {"type": "placeholder", "name": message.get("name")}
    return {k: v for k, v in message.items() if k != "type"}


def prompt_json(
    version: PromptVersion, latest_number: int | None = None, resolved: composition.Resolved | None = None
) -> dict[str, Any]:
    """A version in Langfuse's Prompt shape; `latest` is on the newest version. A fetch sends it `resolved` (its
    includes replaced, with Langfuse's `resolutionGraph`); a write answers with the version as stored."""
    prompt = version.prompt
    body = resolved.body if resolved is not None else version.body
    labels = sorted(version.labels.values_list("name", flat=True))
    if version.number == (latest_number if latest_number is not None else _latest_number(prompt)):
        labels.append(LATEST)
    return {
        "id": str(version.pk),
        "createdAt": version.created_at.isoformat(),
        "updatedAt": version.created_at.isoformat(),
        "projectId": PROJECT["id"],
        "createdBy": version.author_name,
        "name": prompt.name,
        "version": version.number,
        "type": version.kind,
        "prompt": [_message(m) for m in body] if version.kind == "chat" else body,
        "config": version.config,
        "labels": labels,
        "tags": sorted(prompt.tags.values_list("name", flat=True)),
        "commitMessage": version.commit_message,
        "resolutionGraph": _resolution_graph(version, resolved),
    }


def _resolution_graph(version: PromptVersion, resolved: composition.Resolved | None) -> dict[str, Any] | None:
    """Langfuse's shape: the root, and per including version's id the versions it includes."""
    if resolved is None or not resolved.graph:
        return None

    def node(v: PromptVersion) -> dict[str, Any]:
        return {"id": str(v.pk), "name": v.prompt.name, "version": v.number}

    return {
        "root": node(version),
        "dependencies": {str(parent): [node(v) for v in included] for parent, included in resolved.graph.items()},
    }


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
        public_id, secret = _credentials(request)
        _check_query(request)
        label, version = _fetch_query(request)
        verdict, entry = serving.fetch(secret, name, label, version, resolver=_resolve, view="lf:")
        if verdict[:1] == entries.UNKNOWN_KEY or verdict[1:] != public_id.encode():
            raise INVALID_CREDENTIALS
        if verdict[:1] == entries.NO_READ:
            raise LangfuseError(
                403, "AccessDeniedError", "Fetching a prompt needs the 'read' scope; this key lacks it."
            )
    except LangfuseError as exc:
        return _error_body(exc.status, exc.error, exc.message)
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
    labels = [label for label in _string_list(data.get("labels"), "labels") if label != LATEST]
    tags = data.get("tags")
    version = version_publish(
        name=name,
        kind=kind,
        body=data.get("prompt"),
        config={} if config is None else config,
        commit_message=commit_message or DEFAULT_COMMIT_MESSAGE,
        tags=None if tags is None else _string_list(tags, "tags"),
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
        version = _create(key, _json_body(request))
        return JsonResponse(prompt_json(version), status=201)
    _require_scope(key, Scope.READ, "Listing prompts")
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
    new_labels = _string_list(_json_body(request).get("newLabels"), "newLabels")
    version = _add_labels(key, match["name"], int(match["version"]), new_labels)
    return JsonResponse(prompt_json(version))


@langfuse_view(("GET",))
def projects(request: HttpRequest, key: ApiKey) -> JsonResponse:
    """What `Langfuse.auth_check()` calls: one project, the registry itself."""
    return JsonResponse({"data": [PROJECT]})


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    return _error_body(
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
