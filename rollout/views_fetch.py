"""`GET /api/v1/prompts/{name}`: the hot path, as a plain Django view.

It is routed ahead of the django-ninja API (see promptreg/urls.py) so that a fetch
pays for nothing but the cache read: no per-request schema validation, no auth
callbacks. `rollout.api_prompts.fetch_prompt` documents it in the OpenAPI
document with the same behaviour. The API key is checked in the same Redis round
trip as the cached entry (`serving.fetch`).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from promptreg.models import LABEL_RE, LATEST, PRODUCTION
from rollout import entries, serving
from rollout.api_errors import error_response

MAX_SESSION_ID = 256


def fetch_prompt(request: HttpRequest, name: str) -> HttpResponse:
    if request.method != "GET":
        response: HttpResponse = error_response(
            405, "method_not_allowed", f"{request.method} is not allowed on {request.path}."
        )
        response["Allow"] = "GET"
        return response
    scheme, _, secret = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if not scheme:
        return error_response(401, "missing_key", "Send your API key as 'Authorization: Bearer <secret>'.")
    if scheme.lower() != "bearer" or not secret.strip():
        return error_response(401, "unauthorized", "Send a valid API key as 'Authorization: Bearer <secret>'.")

    if request.META.get("QUERY_STRING"):
        query = request.GET
        label, asked_version, session_id = query.get("label"), query.get("version"), query.get("session_id")
    else:  # the common case: production, no parsing to do
        label = asked_version = session_id = None
    version: int | None = None
    if asked_version is not None:
        if label is not None:
            return error_response(400, "label_and_version", "Ask for a label or a version, not both.")
        if not asked_version.isdigit() or int(asked_version) < 1:
            return error_response(400, "invalid", f"version: must be a whole number ≥ 1, not {asked_version!r}.")
        version = int(asked_version)
    else:
        label = label or PRODUCTION
        if label != LATEST and not LABEL_RE.match(label):
            return error_response(400, "invalid_label", f"'{label}' is not a label name.")
    if session_id is not None and len(session_id) > MAX_SESSION_ID:
        return error_response(400, "invalid", f"session_id: at most {MAX_SESSION_ID} characters.")

    verdict, entry = serving.fetch(secret.strip(), name, label, version)
    if verdict[:1] == entries.UNKNOWN_KEY:
        return error_response(401, "invalid_key", "The API key is invalid or revoked.")
    if verdict[:1] == entries.NO_READ:
        return error_response(403, "insufficient_scope", "This API key lacks the 'read' scope.")
    assert entry is not None, "a key that may read gets an entry"
    if entry.status != 200:
        return HttpResponse(entry.body, content_type="application/json", status=entry.status)
    etag, body = entry.for_session(session_id)
    if request.META.get("HTTP_IF_NONE_MATCH") == etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    return response
