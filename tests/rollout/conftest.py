"""API fixtures: keys by scope and a test client that sends them."""

from __future__ import annotations

import pytest
from django.test import Client

from promptreg.models import ReviewPolicy


class ApiClient(Client):
    """Django's test client speaking JSON with a Bearer key."""

    def __init__(self, secret: str | None):
        super().__init__(**({"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}))
        self.secret = secret

    def post_json(self, path: str, data=None, **extra):
        return self.post(path, data if data is not None else {}, content_type="application/json", **extra)


@pytest.fixture
def api_as(api_key_factory):
    """`api_as("read", "deploy")` → a client holding a fresh key with those scopes."""

    def make(*scopes: str) -> ApiClient:
        _, secret = api_key_factory(*scopes, name="-".join(scopes) or "none")
        return ApiClient(secret)

    return make


@pytest.fixture
def ungated(db):
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
