"""Every error under /api/ is JSON `{"error": {"code", "message"}}`, never an HTML page."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views import defaults


def error_response(status: int, code: str, message: str, **details) -> JsonResponse:
    body = {"error": {"code": code, "message": message, **details}}
    return JsonResponse(body, status=status)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception=None):
    if _is_api(request):
        return error_response(404, "not_found", f"No API endpoint at {request.path}.")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest):
    if _is_api(request):
        return error_response(500, "server_error", "Internal error; it has been logged.")
    return defaults.server_error(request)
