"""The abuse suite's fixtures: a prompt whose production is live and reviewed, an unreviewed draft
after it, and clients holding keys of every kind (read, write, deploy, admin, none, garbage, revoked)."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client
from django.utils import timezone

from promptreg.models import PRODUCTION, ApiKey, MoveVia, ReviewDecision
from promptreg.services import Actor, label_move, review_submit, version_publish, version_submit_for_review

NAME = "support-system"
SERVER = Actor(via=MoveVia.CLI)


class Api:
    """JSON over the test client with one credential (Bearer for /api/v1, Basic for the Langfuse routes)."""

    def __init__(self, client: Client, headers: dict[str, str]):
        self.client, self.headers = client, headers

    def call(self, method: str, path: str, data=None):
        body = "" if data is None else json.dumps(data)
        return self.client.generic(method.upper(), path, body, content_type="application/json", **self.headers)

    def get(self, path: str, params=None):
        return self.client.get(path, params or {}, **self.headers)

    def post(self, path: str, data=None):
        return self.call("post", path, data if data is not None else {})


def issue(*scopes: str, name: str = "key", **kwargs) -> tuple[ApiKey, str]:
    return ApiKey.issue(name=name, scopes=list(scopes), **kwargs)


def bearer(secret: str | None) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret is not None else {}


def basic(public_id: str, secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{public_id}:{secret}".encode()).decode()}


KINDS = ("read", "write", "deploy", "admin", "none", "garbage", "revoked")


def credentials(kind: str) -> tuple[ApiKey | None, str | None]:
    """(key, secret) for a kind of caller; `none` sends no credential at all."""
    if kind in ("read", "write", "deploy", "admin"):
        return issue(kind, name=f"{kind}-key")
    if kind == "none":
        return None, None
    if kind == "garbage":
        return None, "sk-pr-not-a-real-key"
    key, secret = issue("admin", name="revoked-key")
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    return key, secret


@pytest.fixture
def v1_live(author, reviewer, django_capture_on_commit_callbacks):
    """support-system: v1 reviewed and live in production, v2 an unreviewed draft."""
    with django_capture_on_commit_callbacks(execute=True):
        v1 = version_publish(
            name=NAME,
            kind="text",
            body="Hello {{ name }}",
            commit_message="first",
            actor=Actor(via=MoveVia.BUTTON, user=author),
        )
        version_submit_for_review(version=v1, actor=Actor(via=MoveVia.BUTTON, user=author))
        review_submit(version=v1, actor=Actor(via=MoveVia.BUTTON, user=reviewer), decision=ReviewDecision.APPROVE)
        label_move(name=NAME, label=PRODUCTION, version=1, actor=SERVER, reason="first release")
        v2 = version_publish(
            name=NAME,
            kind="text",
            body="Hey {{ name }}",
            commit_message="draft",
            actor=Actor(via=MoveVia.BUTTON, user=author),
        )
    return v1, v2


@pytest.fixture
def approve(reviewer):
    def approve_(version, by=None):
        version_submit_for_review(version=version, actor=SERVER)
        review_submit(
            version=version, actor=Actor(via=MoveVia.BUTTON, user=by or reviewer), decision=ReviewDecision.APPROVE
        )
        version.refresh_from_db()
        return version

    return approve_


@pytest.fixture
def api_for(client):
    """`api_for("deploy")` → an Api holding a fresh key of that kind (and the key)."""

    def make(kind: str) -> tuple[Api, ApiKey | None]:
        key, secret = credentials(kind)
        return Api(client, bearer(secret)), key

    return make
