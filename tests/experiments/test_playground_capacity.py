"""The run API never takes the threads app servers' fetches are served by: gunicorn with one worker of four threads,
PLAYGROUND_API_CONCURRENCY=1, a provider that takes seconds to answer."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from django.db import connection

from promptreg.models import ApiKey
from promptreg.services import label_move
from tests.experiments.conftest import SERVER
from tests.fake_llm import FakeLLM
from tests.gunicorn_server import database_url, gunicorn

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(120),
]
NAME = "support-answer"


def test_a_slow_run_leaves_fetches_served_and_a_run_beyond_the_limit_is_refused_at_once(publish, tmp_path):
    publish(name=NAME, body="Q: {{ question }}", actor=SERVER)
    label_move(name=NAME, label="production", version=1, actor=SERVER, reason="live", override=True)
    _, secret = ApiKey.issue(name="author", scopes=["read", "write"])
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    with FakeLLM() as fake:
        env = {
            "DATABASE_URL": database_url(connection.settings_dict),
            "PROMPTREG_VAR_DIR": str(tmp_path),
            "LLM_BASE_URL": fake.base_url,
            "PLAYGROUND_TIMEOUT": "20",
            "PLAYGROUND_API_CONCURRENCY": "1",
        }
        with gunicorn(env, tmp_path, workers=1, threads=4) as server, httpx.Client(base_url=server.url) as http:
            run = f"/api/v1/prompts/{NAME}/run"
            slow: dict = {}

            def slow_run():
                body = json.dumps({"variables": {"question": "[[sleep:4]] why?"}})
                slow["response"] = http.post(run, content=body, headers=headers, timeout=30)

            runner = threading.Thread(target=slow_run)
            runner.start()
            deadline = time.monotonic() + 10
            while fake.in_flight == 0:  # the slow run has reached the provider
                assert time.monotonic() < deadline
                time.sleep(0.02)
            started = time.monotonic()
            refused = http.post(run, content=json.dumps({"variables": {"question": "now"}}), headers=headers)
            fetched = http.get(f"/api/v1/prompts/{NAME}", headers=headers)
            waited = time.monotonic() - started
            assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_runs"
            assert fetched.status_code == 200 and fetched.json()["version"] == 1
            assert waited < 2.0 and fake.in_flight == 1  # neither waited for the slow run
            runner.join(30)
            assert slow["response"].status_code == 200, slow["response"].text
            again = http.post(run, content=json.dumps({"variables": {"question": "now"}}), headers=headers)
            assert again.status_code == 200 and again.json()["output"] == "echo: Q: now"
