"""Keeps the promise that every client error under /api/ is JSON.

Django and django-ninja answer a few cases with plain or HTML bodies (405 for a
method a path does not take, the DEBUG 404 page); this turns them into
`{"error": {"code", "message"}}` with the same status.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from rollout.api_errors import error_response

_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}


class ApiJsonErrorsMiddleware:
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
            message = f"{request.method} is not allowed on {request.path}." if status == 405 else f"{request.path}: {response.reason_phrase}."
            json_response = error_response(status, _CODES.get(status, "invalid"), message)
            if "Allow" in response:
                json_response["Allow"] = response["Allow"]
            return json_response
        return response
