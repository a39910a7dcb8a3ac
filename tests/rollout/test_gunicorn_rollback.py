"""A rollback is served by every process of a 2-worker gunicorn on the very next request."""

from __future__ import annotations

import httpx
import pytest
from django.conf import settings
from django.db import connection

from promptreg.models import PRODUCTION, MoveVia, ReviewPolicy
from promptreg.services import Actor, label_move, version_publish
from tests.gunicorn_server import database_url, gunicorn

NAME = "support-system"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_every_worker_serves_the_rolled_back_version_on_the_next_request(api_key_factory, tmp_path):
    cli = Actor(via=MoveVia.CLI)
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    for n in (1, 2):
        version_publish(name=NAME, kind="text", body=f"v{n}: hello {{{{ name }}}}", commit_message=f"v{n}", actor=cli)
        label_move(name=NAME, label=PRODUCTION, version=n, actor=cli, reason=f"ship v{n}")
    _, reader = api_key_factory("read", name="reader")
    _, deployer = api_key_factory("deploy", name="deployer")
    env = {"DATABASE_URL": database_url(connection.settings_dict), "REDIS_URL": settings.REDIS_URL}
    url = f"/api/v1/prompts/{NAME}"

    with gunicorn(env, tmp_path, workers=2) as server:

        def serve_until_both_workers_answered(expected: int) -> set[str]:
            start = server.log_lines()
            for _ in range(200):
                with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {reader}"}, timeout=10) as c:
                    response = c.get(url)  # a new connection each time, so either worker may accept it
                assert response.status_code == 200 and response.json()["version"] == expected
                pids = set(server.worker_pids(start))
                if len(pids) == 2:
                    return pids
            pytest.fail("requests never reached both workers")

        before = serve_until_both_workers_answered(2)  # both workers have served (and cached) v2
        rolled = httpx.post(
            server.url + url + "/rollback",
            json={"reason": "quality dropped"},
            headers={"Authorization": f"Bearer {deployer}"},
            timeout=10,
        )
        assert rolled.status_code == 200 and rolled.json()["version"] == 1
        after = serve_until_both_workers_answered(1)  # every request after the rollback: v1, from both workers
        assert after == before
