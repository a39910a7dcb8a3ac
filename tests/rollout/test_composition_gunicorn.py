"""An included prompt's rollback is served by every process of a 2-worker gunicorn in the dependent's very next
fetch, though each had the dependent's old text in memory."""

from __future__ import annotations

import httpx
import pytest
from django.conf import settings
from django.db import connection

from promptreg.models import PRODUCTION, MoveVia, ReviewPolicy
from promptreg.services import Actor, label_move, version_publish
from tests.gunicorn_server import database_url, gunicorn

VOICE, DEPENDENT = "company-voice", "support-system"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_every_worker_serves_the_dependent_with_the_rolled_back_include(api_key_factory, tmp_path):
    cli = Actor(via=MoveVia.CLI)
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    for n in (1, 2):
        version_publish(name=VOICE, kind="text", body=f"voice v{n}", commit_message=f"v{n}", actor=cli)
        label_move(name=VOICE, label=PRODUCTION, version=n, actor=cli, reason=f"ship v{n}")
    include = f"@@@langfusePrompt:name={VOICE}|label=production@@@"
    version_publish(name=DEPENDENT, kind="text", body=f"Hi. {include}", commit_message="v1", actor=cli)
    label_move(name=DEPENDENT, label=PRODUCTION, version=1, actor=cli, reason="ship")
    _, reader = api_key_factory("read", name="reader")
    _, deployer = api_key_factory("deploy", name="deployer")
    env = {"DATABASE_URL": database_url(connection.settings_dict), "REDIS_URL": settings.REDIS_URL}

    with gunicorn(env, tmp_path, workers=2) as server:

        def serve_until_both_workers_answered(expected: str) -> set[str]:
            start = server.log_lines()
            for _ in range(200):
                with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {reader}"}, timeout=10) as c:
                    response = c.get(f"/api/v1/prompts/{DEPENDENT}")  # a new connection: either worker may take it
                assert response.status_code == 200 and response.json()["prompt"] == expected
                pids = set(server.worker_pids(start))
                if len(pids) == 2:
                    return pids
            pytest.fail("requests never reached both workers")

        before = serve_until_both_workers_answered("Hi. voice v2")
        rolled = httpx.post(
            f"{server.url}/api/v1/prompts/{VOICE}/rollback",
            json={"reason": "too warm"},
            headers={"Authorization": f"Bearer {deployer}"},
            timeout=10,
        )
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["impact"].startswith(f"1 prompt includes this at production: {DEPENDENT} (production v1")
        after = serve_until_both_workers_answered("Hi. voice v1")
        assert after == before
