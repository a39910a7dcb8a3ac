"""API-key authentication for the JSON API: `Authorization: Bearer <secret>`, checked by scope."""

from __future__ import annotations

from typing import cast

from django.http import HttpRequest
from ninja.security import HttpBearer

from promptreg.exceptions import Forbidden, RegistryError
from promptreg.models import ApiKey, MoveVia
from promptreg.services import Actor


class ApiRequest(HttpRequest):
    """A request that `ApiKeyAuth` let through: it carries the key."""

    api_key: ApiKey


class Unauthorized(RegistryError):
    code = "unauthorized"
    status = 401


class ApiKeyAuth(HttpBearer):
    """Accepts a usable key that has `scope` (admin implies all; deploy implies read)."""

    def __init__(self, scope: str):
        super().__init__()
        self.scope = scope

    def __call__(self, request: HttpRequest):
        if not request.headers.get("Authorization"):
            raise Unauthorized("Send your API key as 'Authorization: Bearer <secret>'.", code="missing_key")
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:
        key = ApiKey.find(token)
        if key is None:
            raise Unauthorized("The API key is invalid or revoked.", code="invalid_key")
        problem = key.scope_problem(self.scope)
        if problem:
            raise Forbidden(problem, code="insufficient_scope")
        cast(ApiRequest, request).api_key = key
        return key


def api_actor(request: HttpRequest) -> Actor:
    return Actor(via=MoveVia.API, api_key=cast(ApiRequest, request).api_key)
