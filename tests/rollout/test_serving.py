"""The serving cache: one resolve per change, invalidated on commit, never stale, and the database
fallback. With REDIS_URL set these run against the real Redis; on the embedded default every
fetch resolves from the database and the same behaviour must hold."""

from __future__ import annotations

import os
import socket
import time

import pytest
import redis
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from promptreg.models import PRODUCTION, ApiKey, Label, hash_secret
from promptreg.services import label_move, rollback
from rollout import entries, hotcache, serving
from rollout.models import PendingInvalidation, PendingKeyVerdict
from tests.conftest import make_user
from tests.redis_server import redis_server
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


def test_a_reader_that_resolved_before_a_move_cannot_cache_its_stale_answer(
    two_live, cli, django_capture_on_commit_callbacks
):
    """The race: resolve (v2) … label moves to v1 and invalidates … the slow reader writes."""
    stale = entries.resolve(NAME, PRODUCTION, None)
    r = serving.client()
    if r is not None:
        gen_k, entry_k = f"pr:g:{NAME}", f"pr:e:{NAME}:l:{PRODUCTION}"
        generation_seen = r.get(gen_k) or serving._first_generation(r, gen_k)
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


def test_publishing_invalidates_latest_and_unknown_version(
    reader, two_live, publish, django_capture_on_commit_callbacks
):
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
    layer = hotcache.listener()
    assert serving._trusted_client(layer) is None  # no connection attempt per request while it is down
    serving._redis_down_until = 1.0  # long past: the next request tries to recover, fails, and waits again
    assert serving._trusted_client(layer) is None and serving._redis_down_until > 1.0


def test_a_revocation_wins_over_a_reader_that_checked_the_key_before_it(
    api_key_factory, two_live, django_capture_on_commit_callbacks
):
    key, secret = api_key_factory("read")
    checked_before = entries.key_verdict(secret)
    assert checked_before == entries.CAN_READ + key.public_id.encode()
    with django_capture_on_commit_callbacks(execute=True):
        key.revoked_at = timezone.now()
        key.save()
    r = serving.client()
    if r is not None:
        assert serving.cache_verdict(r, serving.KEY_PREFIX + hash_secret(secret), checked_before) is False
        assert r.get(serving.KEY_PREFIX + hash_secret(secret)) == entries.UNKNOWN_KEY
    assert ApiClient(secret).get(URL).status_code == 401


def test_a_new_key_and_a_scope_change_take_effect_at_once(
    api_key_factory, two_live, django_capture_on_commit_callbacks
):
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


def test_an_invalidation_that_cannot_reach_redis_is_retried_until_it_lands(
    reader, two_live, cli, monkeypatch, django_capture_on_commit_callbacks
):
    assert reader.get(URL).json()["version"] == 2  # cached, where there is a cache
    reachable = serving.client
    monkeypatch.setattr(serving, "client", unreachable_redis)  # the process that rolls back cannot reach Redis
    with django_capture_on_commit_callbacks(execute=True):
        rollback(name=NAME, actor=cli, reason="bad")
    assert PendingInvalidation.objects.get().prompt_name == NAME
    assert serving.invalidations_retry() is False  # still unreachable: the debt stays
    monkeypatch.setattr(serving, "client", reachable)
    if django_settings.REDIS_URL:
        assert serving.client().get(f"pr:e:{NAME}:l:{PRODUCTION}") is not None  # Redis still holds v2's answer…
    assert reader.get(URL).json()["version"] == 1  # …the database serves while Redis counts as down…
    serving._redis_down_until = 0.0  # …and once the retry interval is over,
    assert (
        reader.get(URL).json()["version"] == 1
    )  # this process, having seen the fault, lands the debt before reading Redis
    if django_settings.REDIS_URL:
        assert serving.client().get(f"pr:e:{NAME}:l:{PRODUCTION}") is not None  # v1, cached again
    else:
        serving.invalidations_retry()  # beat's retry: embedded mode has no cache to recover
    assert not PendingInvalidation.objects.exists()


def test_a_change_whose_invalidation_reached_redis_leaves_no_debt(
    reader, two_live, cli, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        rollback(name=NAME, actor=cli, reason="bad")
    assert not PendingInvalidation.objects.exists() and not PendingKeyVerdict.objects.exists()


def test_a_retry_keeps_the_record_of_a_change_whose_invalidation_failed_again_meanwhile(two_live, monkeypatch):
    PendingInvalidation.objects.create(prompt_name=NAME)
    real_new_generation, retried = serving._new_generation, []

    def lands_while_another_change_fails(name: str, r=None, **kwargs) -> bool:
        if retried:
            return real_new_generation(name, r, **kwargs)
        retried.append(name)
        with monkeypatch.context() as m:
            m.setattr(serving, "client", unreachable_redis)
            serving.invalidate_prompt(name)  # a second rollback, committed meanwhile, could not reach Redis either
        return True  # the retry's own invalidation landed

    monkeypatch.setattr(serving, "_new_generation", lands_while_another_change_fails)
    serving.invalidations_retry()
    assert PendingInvalidation.objects.filter(prompt_name=NAME).exists()  # that second change is still owed


# --- The per-process layer (it exists only with Redis: these tests bring their own) -------------


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def with_redis(private_redis, settings):
    """A private redis-server for this test (also on the embedded default), empty at the start."""
    settings.REDIS_URL = private_redis.url
    serving.client().flushdb()
    return private_redis


def sure_listener() -> hotcache.Listener:
    layer = hotcache.listener()
    deadline = time.monotonic() + 5
    while not layer.sure():
        assert time.monotonic() < deadline, "the invalidation channel never came up"
        if layer.needs_recovery:
            serving.recover(layer)
        time.sleep(0.01)
    return layer


def redis_must_not_be_read(monkeypatch) -> list[tuple]:
    calls = []

    def recorded(r, *keys):
        calls.append(keys)
        return real_mget(r, *keys)

    real_mget = serving._mget
    monkeypatch.setattr(serving, "_mget", recorded)
    return calls


def test_a_warm_fetch_is_served_from_memory_and_a_rollback_still_shows_on_the_next_fetch(
    with_redis, reader, two_live, cli, monkeypatch, django_capture_on_commit_callbacks
):
    redis_reads = redis_must_not_be_read(monkeypatch)
    for _ in range(50):  # a loaded machine may make the listener miss a PING, which flushes the layer: fetch again
        sure_listener()
        reader.get(URL)
        redis_reads.clear()
        first = reader.get(URL)
        if not redis_reads:
            break
    assert (first.json()["version"], redis_reads) == (2, [])  # no round trip
    assert reader.get(URL, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    with django_capture_on_commit_callbacks(execute=True):
        rollback(name=NAME, actor=cli, reason="bad")
    assert reader.get(URL).json()["version"] == 1  # the very next fetch
    assert len(redis_reads) == 1
    sure_listener()
    assert reader.get(URL).json()["version"] == 1 and len(redis_reads) == 1  # in memory again


def test_when_the_invalidation_channel_drops_the_layer_is_flushed_and_redis_serves(
    with_redis, reader, two_live, monkeypatch
):
    layer = sure_listener()
    reader.get(URL)
    assert layer.entries
    r = serving.client()
    ours = [c["id"] for c in r.client_list() if c["name"] == f"promptreg-invalidations-{os.getpid()}"]
    r.client_kill_filter(_id=ours[0])
    deadline = time.monotonic() + 2
    while layer.subscribed or layer.entries:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    redis_reads = redis_must_not_be_read(monkeypatch)
    assert reader.get(URL).json()["version"] == 2 and len(redis_reads) + (serving._redis_down_until > 0) >= 1


def test_the_layer_keeps_at_most_its_setting_of_entries(
    with_redis, reader, two_live, publish, settings, django_capture_on_commit_callbacks
):
    settings.SERVING_LOCAL_ENTRIES = 3
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3, 7):
            publish(body=f"v{n}")
    layer = sure_listener()
    for n in range(1, 7):
        assert reader.get(URL, {"version": n}).json()["version"] == n
    # At most 3, and never the least recently used (a flush on a loaded machine may have emptied it meanwhile).
    assert len(layer.entries) <= 3 and not any(f"pr:e:{NAME}:v:{n}" in layer.entries for n in (1, 2, 3, 4))
    assert set(layer.entries) <= {
        f"pr:e:{NAME}:v:5",
        serving.KEY_PREFIX + hash_secret(reader.secret),
        f"pr:e:{NAME}:v:6",
    }


def test_a_key_revoked_after_its_verdict_was_cached_in_memory_is_refused_by_the_next_request(
    with_redis, api_key_factory, two_live, django_capture_on_commit_callbacks
):
    key, secret = api_key_factory("read")
    for _ in range(50):  # a loaded machine may make the listener miss a PING, which flushes the layer: fetch again
        sure_listener()
        assert ApiClient(secret).get(URL).status_code == 200
        if serving.hotcache.listener().get(serving.KEY_PREFIX + hash_secret(secret), "k:" + hash_secret(secret)):
            break
    assert (
        serving.hotcache.listener().get(serving.KEY_PREFIX + hash_secret(secret), "k:" + hash_secret(secret))[:1]
        == entries.CAN_READ
    )
    with django_capture_on_commit_callbacks(execute=True):
        key.revoked_at = timezone.now()
        key.save()
    assert ApiClient(secret).get(URL).status_code == 401


def test_a_generation_never_comes_back_after_the_cache_is_wiped(with_redis, two_live):
    """A reader that read a generation, then resolved slowly, must not store after a recovery wiped
    the cache (a Redis restarted from an old snapshot): the prompt gets a fresh generation, not ''."""
    r = serving.client()
    gen_k, entry_k = f"pr:g:{NAME}", f"pr:e:{NAME}:l:{PRODUCTION}"
    r.delete(gen_k)
    seen = serving._first_generation(r, gen_k)
    stale = entries.resolve(NAME, PRODUCTION, None)
    r.delete(BOOT := serving.BOOT_KEY)
    assert serving.recover(hotcache.listener()) and r.get(BOOT) is not None and r.get(gen_k) is None  # wiped
    fresh = serving._first_generation(r, gen_k)
    assert fresh not in (seen, b"") and serving.store(r, gen_k, entry_k, seen, stale) is False


def test_a_key_revoked_in_the_django_admin_is_refused_by_the_next_request(
    with_redis, api_key_factory, two_live, client, admin_user, django_capture_on_commit_callbacks
):
    """The admin's change form saves the model like the CLI and the dashboard: the verdict follows on commit."""
    key, secret = api_key_factory("read")
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    assert ApiClient(secret).get(URL).status_code == 200
    sure_listener()
    assert ApiClient(secret).get(URL).status_code == 200  # the verdict is in memory now
    url = f"/admin/promptreg/apikey/{key.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if hasattr(field, "fields"):  # split date and time
            for i, part in enumerate(field.widget.decompress(value) if not isinstance(value, list) else value):
                data[f"{name}_{i}"] = "" if part is None else part
        elif value is not None:
            data[name] = value
    now = timezone.now()
    data.update({"revoked_at_0": now.strftime("%Y-%m-%d"), "revoked_at_1": now.strftime("%H:%M:%S")})
    with django_capture_on_commit_callbacks(execute=True):
        saved = client.post(url, data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors if saved.context else saved
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert ApiClient(secret).get(URL).status_code == 401


def test_a_key_is_never_stronger_than_its_owner_from_the_next_request(
    with_redis, two_live, client, django_capture_on_commit_callbacks
):
    """A key does what its owner may now: losing the Deployer role (or leaving) takes it from their keys at once,
    on the cached fetch path as on the database-checked deploy path."""
    dave = make_user("dave", "Deployer")
    deployer = Group.objects.get(name="Deployer")
    key, secret = ApiKey.issue(name="dave's pipeline", scopes=["deploy"], owner=dave)
    api = ApiClient(secret)
    sure_listener()
    assert api.get(URL).status_code == 200 and api.get(URL).status_code == 200  # the verdict is in memory now
    with django_capture_on_commit_callbacks(execute=True):
        dave.groups.remove(deployer)
    assert api.get(URL).status_code == 403
    rollback = api.post_json(f"{URL}/rollback", {"reason": "bad", "expected_current": 2})
    assert rollback.status_code == 403 and Label.objects.get(prompt__name=NAME, name=PRODUCTION).version.number == 2
    assert rollback.json()["error"]["message"] == (
        "This API key's owner dave no longer holds the Deployer role its 'deploy' scope needs."
    )
    client.force_login(make_user("ada", "Admin"))
    assert "suspended: deploy (dave no longer holds the role)" in client.get("/keys/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        deployer.user_set.add(dave)  # the other side of the relation
    assert api.get(URL).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        dave.is_active = False
        dave.save()
    assert api.get(URL).status_code == 403
    with pytest.raises(ValidationError, match="needs an owner with the Deployer role"):
        ApiKey.issue(name="alice's", scopes=["deploy"], owner=make_user("alice", "Author"))
