"""Langfuse's wire format for `rollout.langfuse_api`: its errors, its Basic auth, its request bodies and its
Prompt shape (`{"message", "error"}` errors; every deterministic refusal a 400, since the SDK retries 409 and 5xx)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from promptreg import composition
from promptreg.exceptions import Forbidden, GateBlocked, NotFound, RegistryError
from promptreg.models import LATEST, ApiKey, Prompt, PromptVersion
from promptreg.storable import parse_json, unstorable_text

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


def error_body(status: int, error: str, message: str) -> JsonResponse:
    return JsonResponse({"message": message, "error": error}, status=status)


def _registry_error(exc: RegistryError) -> JsonResponse:
    if isinstance(exc, NotFound):
        return error_body(404, "LangfuseNotFoundError", exc.message)
    if isinstance(exc, Forbidden):
        return error_body(403, "AccessDeniedError", exc.message)
    # Conflicts (409 in our own API) are 400 here: the SDK retries a 409.
    error = "GateBlockedError" if isinstance(exc, GateBlocked) else "InvalidRequestError"
    return error_body(400, error, exc.message)


INVALID_CREDENTIALS = LangfuseError(
    401, "UnauthorizedError", "Invalid credentials: unknown public key, wrong secret, or a revoked key."
)


def credentials(request: HttpRequest) -> tuple[str, str]:
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
    key = ApiKey.find_pair(*credentials(request))
    if key is None:
        raise INVALID_CREDENTIALS
    return key


def check_query(request: HttpRequest) -> None:
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
                check_query(request)
                return view(request, key, *args, **kwargs)
            except LangfuseError as exc:
                return error_body(exc.status, exc.error, exc.message)
            except RegistryError as exc:
                return _registry_error(exc)

        return wrapper

    return decorator


def require_scope(key: ApiKey, scope: str, action: str) -> None:
    problem = key.scope_problem(scope)
    if problem:
        raise LangfuseError(403, "AccessDeniedError", f"{action}: {problem}")


def json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = parse_json(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise LangfuseError(400, "InvalidRequestError", "The request body is not valid JSON.") from None
    except ValueError as exc:
        raise LangfuseError(400, "InvalidRequestError", f"{exc}.") from None
    if not isinstance(data, dict):
        raise LangfuseError(400, "InvalidRequestError", "The request body must be a JSON object.")
    return data


def string_list(value: Any, field: str) -> list[str]:
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
