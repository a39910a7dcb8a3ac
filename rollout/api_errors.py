"""Every error under /api/ is JSON `{"error": {"code", "message"}}`, never an HTML page."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.shortcuts import render
from django.views import defaults


def error_response(status: int, code: str, message: str, **details) -> JsonResponse:
    body = {"error": {"code": code, "message": message, **details}}
    return JsonResponse(body, status=status)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception=None):
    """Django's 400s: a body over the upload limit says so (413) instead of a bare "Bad Request"."""
    if isinstance(exception, RequestDataTooBig):
        limit = f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 2**20:g} MiB"
        if _is_api(request):
            return error_response(413, "too_large", f"The request body is larger than the {limit} limit.")
        return render(request, "request_too_large.html", {"limit": limit}, status=413)
    if _is_api(request):
        return error_response(400, "invalid", "Bad request.")
    return defaults.bad_request(request, exception)


def not_found(request: HttpRequest, exception=None):
    if _is_api(request):
        return error_response(404, "not_found", f"No API endpoint at {request.path}.")
    return defaults.page_not_found(request, exception)


def permission_denied(request: HttpRequest, exception=None):
    """A 403 says why (the PermissionDenied's message, e.g. "Running the playground needs the Author role.") and who
    gives roles; htmx requests get only that sentence, to show in place."""
    reason = str(exception or "")
    if _is_api(request):
        return error_response(403, "forbidden", reason or "Forbidden.")
    template = "403.html#forbidden" if getattr(request, "htmx", False) else "403.html"
    return render(request, template, {"exception": reason}, status=403)


def server_error(request: HttpRequest):
    if _is_api(request):
        return error_response(500, "server_error", "Internal error; it has been logged.")
    return defaults.server_error(request)
