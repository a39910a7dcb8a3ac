"""The API documentation page: Swagger UI over `/api/v1/openapi.json`, served from our own static files."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse


def api_docs(request: HttpRequest) -> HttpResponse:
    # Public like the OpenAPI document itself: app developers with only an API key read it too.
    settings = {
        "url": reverse("api:openapi-json"),
        "layout": "BaseLayout",
        "deepLinking": True,
        # Swagger UI would otherwise send the document to validator.swagger.io.
        "validatorUrl": None,
    }
    return render(request, "rollout/api_docs.html", {"swagger_settings": settings})
