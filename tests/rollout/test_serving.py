"""The serving cache: one resolve per change, invalidated on commit, never stale, and the database
fallback. With REDIS_URL set these run against the real Redis; on the embedded default every
fetch resolves from the database and the same behaviour must hold."""

from __future__ import annotations

import socket

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from promptreg.models import PRODUCTION, hash_secret
from promptreg.services import label_move, rollback
from rollout import serving
from rollout.models import PendingInvalidation
from tests.rollout.conftest import ApiClient

NAME = "support-system"
URL = f"/api/v1/prompts/{NAME}"


@pytest.fixture
def reader(api_key_factory):
    return ApiClient(api_key_factory("read")[1])


@pytest.fixture
def two_live(publish, cli, ungated, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        publish(), publish(body="second {{ name }}")
        label_move(name=NAME, label=PRODUCTION, version=1, actor=cli, reason="v1")
        label_move(name=NAME, label=PRODUCTION, version=2, actor=cli, reason="v2")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_warm_fetch_touches_no_database_when_redis_is_configured(reader, two_live):
    reader.get(URL)
    with CaptureQueriesContext(connection) as queries:
        response = reader.get(URL)
    assert response.json()["version"] == 2
    if django_settings.REDIS_URL:
        assert len(queries) == 0
    else:  # embedded mode: resolved from the database each time, and that is all it does
        assert 1 <= len(queries) <= 6


def test_a_rollback_is_served_on_the_next_fetch(reader, two_live, cli, django_capture_on_commit_callbacks):
    assert reader.get(URL).json()["version"] == 2
    with django_capture_on_commit_callbacks(execute=True):
        rollback(name=NAME, actor=cli, reason="bad")
    assert reader.get(URL).json()["version"] == 1
    assert reader.get(URL, {"version": 2}).json()["labels"] == []


def test_a_reader_that_resolved_before_a_move_cannot_cache_its_stale_answer(two_live, cli, django_capture_on_commit_callbacks):
    """The race: resolve (v2) … label moves to v1 and invalidates … the slow reader writes."""
    stale = serving.resolve(NAME, PRODUCTION, None)
    r = serving.client()
    if r is not None:
        gen_k, entry_k = f"pr:g:{NAME}", f"pr:e:{NAME}:l:{PRODUCTION}"
        generation_seen = r.get(gen_k) or b""
    with django_capture_on_commit_callbacks(execute=True):
        rollback(name=NAME, actor=cli, reason="bad")
    if r is not None:
        assert serving.store(r, gen_k, entry_k, generation_seen, stale) is False
        assert r.get(entry_k) is None
        assert serving.store(r, gen_k, entry_k, r.get(gen_k) or b"", stale) is True  # the guard, not a broken write
        r.delete(entry_k)
    _, entry = serving.fetch(_secret_with_read(), NAME, PRODUCTION, None)
    assert entry.status == 200 and b'"version":1' in entry.body


def _secret_with_read() -> str:
    from promptreg.models import ApiKey

    return ApiKey.issue(name="race", scopes=["read"])[1]


def test_publishing_invalidates_latest_and_unknown_version(reader, two_live, publish, django_capture_on_commit_callbacks):
    assert reader.get(URL, {"version": 3}).status_code == 404  # cached as a miss
    assert reader.get(URL, {"label": "latest"}).json()["version"] == 2
    with django_capture_on_commit_callbacks(execute=True):
        publish(body="third")
    assert reader.get(URL, {"version": 3}).json()["version"] == 3
    assert reader.get(URL, {"label": "latest"}).json()["version"] == 3


def test_redis_down_serves_from_the_database(reader, two_live, cli, settings, django_capture_on_commit_callbacks):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    first = reader.get(URL)
    assert (first.status_code, first.json()["version"]) == (200, 2)
    with django_capture_on_commit_callbacks(execute=True):
        rollback(name=NAME, actor=cli, reason="bad")  # the invalidation fails quietly
    again = reader.get(URL, HTTP_IF_NONE_MATCH=first["ETag"])
    assert (again.status_code, again.json()["version"]) == (200, 1)
    assert ApiClient("sk-pr-wrong").get(URL).status_code == 401


def test_redis_down_still_counts_as_down_briefly_then_is_retried(reader, two_live, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    assert reader.get(URL).status_code == 200
    assert serving._usable_client() is None  # no connection attempt per request while it is down
    serving._redis_down_until = 1.0  # long past
    assert serving._usable_client() is not None


def test_a_revocation_wins_over_a_reader_that_checked_the_key_before_it(api_key_factory, two_live, django_capture_on_commit_callbacks):
    key, secret = api_key_factory("read")
    checked_before = serving.key_verdict(secret)
    assert checked_before == serving.CAN_READ
    with django_capture_on_commit_callbacks(execute=True):
        key.revoked_at = timezone.now()
        key.save()
    r = serving.client()
    if r is not None:
        assert serving.cache_verdict(r, "pr:k:" + hash_secret(secret), checked_before) is False
        assert r.get("pr:k:" + hash_secret(secret)) == serving.UNKNOWN_KEY
    assert ApiClient(secret).get(URL).status_code == 401


def test_a_new_key_and_a_scope_change_take_effect_at_once(api_key_factory, two_live, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        key, secret = api_key_factory("write")
    client = ApiClient(secret)
    assert client.get(URL).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        key.scopes = ["read", "write"]
        key.save()
    assert client.get(URL).status_code == 200


def unreachable_redis() -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=closed_port(), socket_timeout=0.2, socket_connect_timeout=0.2)


def test_an_invalidation_that_cannot_reach_redis_is_retried_until_it_lands(reader, two_live, cli, monkeypatch, django_capture_on_commit_callbacks):
    assert reader.get(URL).json()["version"] == 2  # cached, where there is a cache
    reachable = serving.client
    monkeypatch.setattr(serving, "client", unreachable_redis)  # the process that rolls back cannot reach Redis
    with django_capture_on_commit_callbacks(execute=True):
        rollback(name=NAME, actor=cli, reason="bad")
    assert PendingInvalidation.objects.get().prompt_name == NAME
    assert serving.invalidations_retry() == 0  # still unreachable: the debt stays
    monkeypatch.setattr(serving, "client", reachable)
    # readers that can reach Redis would still get the cached v2 (for up to ENTRY_TTL, without the retry)
    assert reader.get(URL).json()["version"] == (2 if django_settings.REDIS_URL else 1)
    assert serving.invalidations_retry() == 1
    assert reader.get(URL).json()["version"] == 1
    assert not PendingInvalidation.objects.exists()


def test_a_retry_keeps_the_record_of_a_change_whose_invalidation_failed_again_meanwhile(two_live, monkeypatch):
    PendingInvalidation.objects.create(prompt_name=NAME)
    real_new_generation, retried = serving._new_generation, []

    def lands_while_another_change_fails(name: str) -> bool:
        if retried:
            return real_new_generation(name)
        retried.append(name)
        with monkeypatch.context() as m:
            m.setattr(serving, "client", unreachable_redis)
            serving.invalidate_prompt(name)  # a second rollback, committed meanwhile, could not reach Redis either
        return True  # the retry's own invalidation landed

    monkeypatch.setattr(serving, "_new_generation", lands_while_another_change_fails)
    assert serving.invalidations_retry() == 1
    assert PendingInvalidation.objects.filter(prompt_name=NAME).exists()  # that second change is still owed
