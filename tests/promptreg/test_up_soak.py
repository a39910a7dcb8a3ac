"""Soak: `manage.py up` on the embedded default (SQLite, the embedded broker) with beat every second, under a
steady load of evaluations, scores, fetches and monitor checks: no process restarts, no task lost.

`SOAK_SECONDS` sets the length of the load (60 s in CI; the README's figures are from `SOAK_SECONDS=600`):

    SOAK_SECONDS=600 .venv/bin/python -m pytest tests/promptreg/test_up_soak.py -s
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid

import pytest

from tests.fake_llm import FakeLLM
from tests.up_process import running

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
PROMPT = "customer-support-system"

pytestmark = [pytest.mark.slow, pytest.mark.soak, pytest.mark.timeout(SOAK_SECONDS + 420)]


def count(db, sql: str) -> int:
    return db.execute(sql).fetchone()[0]


def test_up_under_load_loses_no_task_and_restarts_nothing(tmp_path):
    beat = {"MONITOR_DISPATCH_SECONDS": "1", "EXPERIMENT_ANALYSIS_SECONDS": "1"}
    with (
        FakeLLM(delay=0.02) as fake,
        running(tmp_path, env={"LLM_BASE_URL": fake.base_url, "LLM_MODEL": "fake-model", **beat}) as up,
    ):
        up.wait_for_output(r"celery@\S+ ready", 60)
        api = up.client()
        api.post(
            "/api/v1/prompts/soak-answer/versions",
            json={"type": "text", "prompt": "{{ query }}", "commit_message": "soak"},
        ).raise_for_status()
        dataset = (
            api.post(
                "/api/v1/datasets",
                json={
                    "name": "soak",
                    "scorers": ["exact_match"],
                    "cases": [{"variables": {"query": f"[[answer:{n}]]"}, "expected": str(n)} for n in range(5)],
                },
            )
            .raise_for_status()
            .json()["id"]
        )
        # A monitor checked every second on the scores below (a floor they never cross: load, not a rollback).
        api.put(
            f"/api/v1/prompts/{PROMPT}/monitor",
            json={
                "interval_seconds": 1,
                "floor": {"threshold": 0.1, "window_minutes": 5, "min_samples": 5},
                "relative": None,
            },
        ).raise_for_status()

        runs, fetches, failed_fetches, scores = [], 0, 0, 0
        started = next_run = next_scores = time.monotonic()
        while (now := time.monotonic()) - started < SOAK_SECONDS:
            if now >= next_run:  # an evaluation every 2 s
                queued = api.post(
                    "/api/v1/evaluations", json={"prompt": "soak-answer", "version": 1, "dataset": dataset}
                )
                assert queued.status_code == 202, queued.text
                runs.append(queued.json()["id"])
                next_run += 2
            if now >= next_scores:  # 20 scores every 0.5 s
                batch = [
                    {
                        "id": uuid.uuid4().hex,
                        "prompt": PROMPT,
                        "version": 5,
                        "session_id": f"s-{scores + i}",
                        "experiment": None,
                        "metrics": {"quality_score": 0.7 + (i % 5) / 20},
                    }
                    for i in range(20)
                ]
                api.post("/api/v1/scores", json={"scores": batch}).raise_for_status()
                scores += len(batch)
                next_scores += 0.5
            fetches += 1
            failed_fetches += api.get(f"/api/v1/prompts/{PROMPT}").status_code != 200
            time.sleep(0.1)

        deadline = time.monotonic() + 120
        while True:
            states = [api.get(f"/api/v1/evaluations/{run}").json()["state"] for run in runs]
            if all(state in ("done", "failed", "cancelled") for state in states) or time.monotonic() > deadline:
                break
            time.sleep(1)
        api.close()
        up.stop()

    db = sqlite3.connect(tmp_path / "db.sqlite3")
    checks = count(db, "SELECT COUNT(*) FROM rollout_monitorcheck")
    print(
        f"\nsoak {SOAK_SECONDS:g} s: {len(runs)} evaluations ({states.count('done')} done), {scores} scores, "
        f"{fetches} fetches ({failed_fetches} failed), {checks} monitor checks; "
        f"restarts: {up.output.count(' stopped (')}; broker messages left: "
        f"{len(list((tmp_path / 'broker' / 'queue').iterdir()))}"
    )
    assert states.count("done") == len(runs) and len(runs) >= SOAK_SECONDS / 2 - 1, states
    assert failed_fetches == 0
    assert " stopped (" not in up.output, up.output[-4000:]  # up never had to restart anything
    assert "Unrecoverable error" not in up.output and "Traceback" not in up.output
    assert checks >= SOAK_SECONDS * 0.5  # beat queued a dispatch every second and the worker ran the checks
    assert not (tmp_path / "broker" / "bad").exists() or not list((tmp_path / "broker" / "bad").iterdir())
