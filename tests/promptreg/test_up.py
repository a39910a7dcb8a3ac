"""README command 1, minus the install: `manage.py up` on the embedded default, as real processes."""

from __future__ import annotations

import os
import re
import signal
import time

import httpx
import pytest

from tests.fake_llm import FakeLLM
from tests.up_process import Up, running

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


def sign_in(up: Up, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=up.base_url, timeout=10)
    client.get("/accounts/login/")
    signed_in = client.post(
        "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
        headers={"Referer": up.base_url + "/"},
    )
    assert signed_in.status_code == 302 and "sessionid" in client.cookies
    return client


def test_up_runs_like_production_and_a_restart_keeps_the_key(tmp_path):
    with running(tmp_path) as up:
        admin, password = re.search(r"Admin account: (\S+) / (\S+)", up.output).groups()
        with up.client() as api:
            fetched = api.get("/api/v1/prompts/customer-support-system")
        assert fetched.status_code == 200
        assert (fetched.json()["version"], fetched.json()["label"]) == (5, "production")
        assert (tmp_path / "db.sqlite3").exists()
        for secret_file in ("demo-api-key", "secret-key"):
            assert (tmp_path / secret_file).stat().st_mode & 0o777 == 0o600

        browser = sign_in(up, admin, password)
        # DEBUG is off: a mistyped URL is a plain 404, not Django's list of URL patterns.
        missing = browser.get("/prompts-typo/")
        assert missing.status_code == 404 and "Page not found" in missing.text
        assert "URLconf" not in missing.text and "urlpatterns" not in missing.text
        # Static files collected at start: hashed names, gzip, cached for ever.
        oncall = browser.get("/oncall/")
        assert oncall.status_code == 200
        for asset in re.findall(r'src="(/static/[^"]+\.js)"', oncall.text):
            assert re.search(r"\.[0-9a-f]{12}\.js$", asset), asset
            served = browser.get(asset, headers={"Accept-Encoding": "gzip"})
            assert served.status_code == 200 and served.headers["Content-Encoding"] == "gzip"
            assert (
                "immutable" in served.headers["Cache-Control"]
                and "max-age=315360000" in served.headers["Cache-Control"]
            )
            if "plotly" in asset:
                assert int(served.headers["Content-Length"]) < 1_600_000  # 4.8 MB uncompressed
        assert any("plotly" in a for a in re.findall(r'src="(/static/[^"]+\.js)"', oncall.text))

        # A 403 is one log line, not a traceback (alice is an author, not a deployer).
        author = sign_in(up, "alice", password)
        assert author.get("/prompts/customer-support-system/-/rollback/").status_code == 403
        up.wait_for_output(r"Forbidden", 10)

        took = up.stop(signal.SIGINT)
        assert took <= 10 and up.process.returncode == 0, up.output[-3000:]
        assert not up.processes(), "a process outlived up"
        first_key = up.key
    (tmp_path / "up-output.txt").write_text(up.output)
    assert "Traceback" not in up.output
    # Quiet at INFO: beat's housekeeping every 5 s printed nothing.
    assert "Sending due task" not in up.output and not re.search(
        r"dispatch_monitors\S* (received|succeeded)", up.output
    )
    assert re.search(r"INFO/MainProcess\] celery@\S+ ready", up.output)  # INFO is on

    with running(tmp_path) as again:
        assert again.key == first_key  # printed again; app servers keep working
        assert "Admin account 'admin' exists" in again.output
        with again.client() as api:
            assert api.get("/api/v1/prompts/customer-support-system").status_code == 200


def test_up_restarts_a_killed_worker_while_the_web_server_keeps_answering(tmp_path):
    with FakeLLM() as fake, running(tmp_path, env={"LLM_BASE_URL": fake.base_url, "LLM_MODEL": "fake-model"}) as up:
        up.wait_for_output(r"celery@\S+ ready", 60)
        worker = up.main_pid("worker")
        os.kill(worker, signal.SIGKILL)
        killed_at, statuses, new_worker = time.monotonic(), [], None
        with up.client() as api:
            while time.monotonic() - killed_at < 15 and new_worker is None:
                statuses.append(api.get("/api/v1/prompts/customer-support-system").status_code)
                time.sleep(0.2)
                try:
                    pid = up.main_pid("worker")
                    new_worker = pid if pid != worker else None
                except LookupError:
                    pass
            assert new_worker, f"no new worker within 15 s; output:\n{up.output[-3000:]}"
            assert len(statuses) >= 3 and set(statuses) == {200}
            assert re.search(
                r"up: worker \(pid %d\) stopped \(killed by SIGKILL\); restarting in 1 s" % worker,  # noqa: UP031
                up.output,
            )

            # The new worker takes work: an evaluation queued now finishes.
            api.post(
                "/api/v1/prompts/echo-answer/versions",
                json={"type": "text", "prompt": "{{ query }}", "commit_message": "for the test"},
            ).raise_for_status()
            dataset = (
                api.post(
                    "/api/v1/datasets",
                    json={
                        "name": "after-restart",
                        "scorers": ["exact_match"],
                        "cases": [{"variables": {"query": f"[[answer:{n}]]"}, "expected": str(n)} for n in range(4)],
                    },
                )
                .raise_for_status()
                .json()["id"]
            )
            run = api.post("/api/v1/evaluations", json={"prompt": "echo-answer", "version": 1, "dataset": dataset})
            assert run.status_code == 202, run.text
            deadline = time.monotonic() + 60
            while (state := api.get(f"/api/v1/evaluations/{run.json()['id']}").json())["state"] in (
                "queued",
                "running",
            ):
                assert time.monotonic() < deadline, state
                time.sleep(0.3)
        assert state["state"] == "done" and state["progress"] == {"done": 4, "total": 4}
        assert state["metrics"]["exact_match"]["mean"] == 1.0
        assert up.main_pid("worker") == new_worker
