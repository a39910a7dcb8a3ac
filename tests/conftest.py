"""Shared fixtures: one user per role, an outsider, API keys, and a published prompt."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from promptreg.models import ApiKey, MoveVia
from promptreg.services import Actor, version_publish

PASSWORD = "correct-horse-battery-staple"


def make_user(username: str, *roles: str) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", PASSWORD)
    user.groups.set(Group.objects.filter(name__in=roles))
    return user


@pytest.fixture
def author(db):
    return make_user("alice", "Author")


@pytest.fixture
def second_author(db):
    return make_user("amir", "Author")


@pytest.fixture
def reviewer(db):
    return make_user("rita", "Reviewer", "Author")


@pytest.fixture
def deployer(db):
    return make_user("dave", "Deployer")


@pytest.fixture
def admin_user(db):
    return make_user("ada", "Admin")


@pytest.fixture
def outsider(db):
    return make_user("oscar")


@pytest.fixture
def cli():
    return Actor(via=MoveVia.CLI)


@pytest.fixture
def api_key_factory(db):
    def factory(*scopes: str, name: str = "test-key") -> tuple[ApiKey, str]:
        return ApiKey.issue(name=name, scopes=list(scopes))

    return factory


@pytest.fixture
def publish(db):
    """Publish a text version as the server (CLI actor) unless told otherwise."""

    def publish_(name: str = "support-system", body: str = "Hello {{ name }}", **kwargs):
        kwargs.setdefault("actor", Actor(via=MoveVia.CLI))
        kwargs.setdefault("commit_message", "change")
        kwargs.setdefault("kind", "text")
        return version_publish(name=name, body=body, **kwargs)

    return publish_


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Test users need no slow key stretching: PBKDF2's million rounds cost ~0.3 s per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _local_webhook_receivers(settings):
    """The test webhook receivers listen on 127.0.0.1, which promptreg refuses unless allowed explicitly."""
    settings.ALERT_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture(autouse=True)
def _clean_serving_cache():
    """Cached fetches outlive a test's rolled-back transaction: drop them before each test."""
    from rollout import serving

    serving._redis_down_until = 0.0  # a fault another test caused is not this test's
    r = serving.client()
    if r is not None:
        keys = list(r.scan_iter("pr:*", count=1000))
        if keys:
            r.delete(*keys)
