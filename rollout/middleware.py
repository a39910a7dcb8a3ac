"""Middleware of the API: the fetch answered first, and every client error under /api/ as JSON."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from promptreg.converters import ServedNameConverter
from rollout.api_errors import error_response
from rollout.views_fetch import fetch_prompt

FETCH_PREFIX = "/api/v1/prompts/"
_SERVED_NAME = re.compile(ServedNameConverter.regex)


class FetchFirstMiddleware:
    """Answers `GET /api/v1/prompts/{name}` right after `SecurityMiddleware` (SSL redirect,
    nosniff, HSTS, referrer and opener policies), before the sessions, CSRF, messages, auth, htmx
    and history middleware, which an API-key fetch does not use. The host is checked against
    ALLOWED_HOSTS and `X-Frame-Options` and `Content-Length` set, as the skipped middleware would; the answer is the
    view the URLconf routes to (`rollout.views_fetch.fetch_prompt`), so errors, ETag and 304
    are the same either way."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path.startswith(FETCH_PREFIX):
            name = path[len(FETCH_PREFIX) :]
            if _SERVED_NAME.fullmatch(name):
                request.get_host()  # DisallowedHost (400) for a host not in ALLOWED_HOSTS
                response = fetch_prompt(request, name)
                response.headers.setdefault("X-Frame-Options", settings.X_FRAME_OPTIONS)
                response.headers.setdefault("Content-Length", str(len(response.content)))  # as CommonMiddleware would
                return response
        return self.get_response(request)


_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


class ApiJsonErrorsMiddleware:
    """Django and django-ninja answer a few cases with plain or HTML bodies (405 for a method a
    path does not take, the DEBUG 404 page); this turns them into `{"error": {"code", "message"}}`
    with the same status."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            400 <= response.status_code < 500
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            status = response.status_code
            message = (
                f"{request.method} is not allowed on {request.path}."
                if status == 405
                else f"{request.path}: {response.reason_phrase}."
            )
            json_response = error_response(status, _CODES.get(status, "invalid"), message)
            if "Allow" in response:
                json_response["Allow"] = response["Allow"]
            return json_response
        return response
