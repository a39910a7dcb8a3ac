"""Redis faults under real traffic: a private `redis-server` (its own port) behind a 2-worker
gunicorn, stalled with SIGSTOP, killed and restarted while keys are revoked and production moves.
Nothing stale may be served once a change has returned to its caller."""

from __future__ import annotations

import time

import httpx
import pytest
from django.core.management import call_command
from django.db import connection

from promptreg.models import PRODUCTION, ApiKey, MoveVia, ReviewPolicy, hash_secret
from promptreg.services import Actor, label_move, version_publish
from rollout import entries, serving
from rollout.models import PendingInvalidation, PendingKeyVerdict
from tests.gunicorn_server import database_url, gunicorn
from tests.redis_server import redis_server
from tests.storm import run_storm

NAME = "support-system"
URL = f"/api/v1/prompts/{NAME}"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def live_prompt():
    cli = Actor(via=MoveVia.CLI)
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    for n in (1, 2, 3):
        version_publish(name=NAME, kind="text", body=f"v{n}: hello {{{{ name }}}}", commit_message=f"v{n}", actor=cli)
    label_move(name=NAME, label=PRODUCTION, version=1, actor=cli, reason="ship v1")


def fetch_statuses(server, secret: str, count: int) -> list[int]:
    statuses = []
    for _ in range(count):
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=10) as client:
            statuses.append(client.get(URL).status_code)  # a new connection each time: either worker may take it
    return statuses


def test_a_key_revoked_while_redis_is_stalled_never_gets_another_200(live_prompt, tmp_path, settings):
    key, secret = ApiKey.issue(name="app", scopes=["read"])
    with (
        redis_server(tmp_path) as redis,
        gunicorn(
            {"DATABASE_URL": database_url(connection.settings_dict), "REDIS_URL": redis.url},
            tmp_path,
            workers=2,
            threads=4,
        ) as server,
    ):
        settings.REDIS_URL = redis.url  # this process revokes, as `manage.py revoke_api_key` would
        start = server.log_lines()
        assert set(fetch_statuses(server, secret, 30)) == {200}
        assert len(set(server.worker_pids(start))) == 2  # both workers have the key's verdict cached

        redis.stall()
        call_command("revoke_api_key", key.public_id)  # the verdict cannot reach Redis: written down
        assert PendingKeyVerdict.objects.filter(secret_hash=key.secret_hash).exists()
        during_stall = fetch_statuses(server, secret, 6)
        redis.resume()
        after = fetch_statuses(server, secret, 10)
        time.sleep(serving.RETRY_REDIS_AFTER + 0.5)  # the retry interval: every worker has recovered by now
        start = server.log_lines()
        later = fetch_statuses(server, secret, 60)

        assert during_stall.count(200) == after.count(200) == later.count(200) == 0
        assert set(later) == {401} and len(set(server.worker_pids(start))) == 2
        assert not PendingKeyVerdict.objects.exists()  # a worker landed the verdict on recovering
        assert redis_client(redis).get(serving.KEY_PREFIX + hash_secret(secret)) == entries.UNKNOWN_KEY


def redis_client(redis):
    import redis as redis_py

    return redis_py.Redis.from_url(redis.url)


def test_a_rollback_storm_through_a_stall_a_kill_and_a_restart_serves_nothing_stale(
    live_prompt, tmp_path, api_key_factory
):
    _, reader = api_key_factory("read", name="reader")
    _, deployer = api_key_factory("deploy", name="deployer")
    with (
        redis_server(tmp_path) as redis,
        gunicorn(
            {"DATABASE_URL": database_url(connection.settings_dict), "REDIS_URL": redis.url},
            tmp_path,
            workers=2,
            threads=4,
            access_log=False,
        ) as server,
    ):
        done = []

        def faults(elapsed: float) -> None:
            # 0-1 s healthy, 1-2 s stalled, 2-3 s healthy, 3-4 s killed, then restarted (empty)
            for at, name, action in (
                (1.0, "stall", redis.stall),
                (2.0, "resume", redis.resume),
                (3.0, "kill", redis.kill),
                (4.0, "restart", redis.start),
            ):
                if elapsed >= at and name not in done:
                    done.append(name)
                    action()

        result = run_storm(
            server.url, NAME, reader, deployer, versions=[1, 2, 3], seconds=6.0, threads=6, during=faults
        )

    assert done == ["stall", "resume", "kill", "restart"]
    assert len(result.changes) >= 5 and result.ok_fetches >= 100
    assert [
        f.status for f in result.fetches if f.status != 200
    ] == []  # served throughout, from the database when needed
    assert result.stale() == []
    assert not PendingInvalidation.objects.exists()  # every invalidation owed during the faults has landed
