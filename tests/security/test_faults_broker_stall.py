"""A stalled broker (a private redis-server under SIGSTOP) holds no request longer than 2 s, never starves the
fetch path, and the work it did not take is queued again by beat's sweep once it answers."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings
from django.db import connection
from django.db.models import F

from experiments.eval_datasets import dataset_create
from experiments.models import EvalRun, RunState
from promptreg.models import PRODUCTION, MoveVia, ReviewPolicy
from promptreg.services import Actor, label_move, version_publish
from rollout.models import AlertChannel, AlertDelivery, DeliveryStatus
from tests.gunicorn_server import database_url, gunicorn

NAME = "stall-system"
ROOT = Path(__file__).resolve().parents[2]
BOUND = 2.5  # the 2 s publish deadline, plus a loaded machine's slack


@contextlib.contextmanager
def private_redis() -> Iterator[tuple[str, subprocess.Popen]]:
    """A redis-server of this test's own on a free port: SIGSTOP here never touches the shared one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(timeout=10)


def django_script(code: str, env: dict[str, str]) -> str:
    """Run `code` in a fresh Django process (its own Celery producer on `env`'s broker); what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", f"import django\ndjango.setup()\n{code}"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "promptreg.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def queued_ids(url: str, task: str) -> list[int]:
    """The first argument of every `task` message waiting in the private Redis (Celery's message protocol 2)."""
    messages = redis.Redis.from_url(url).lrange("celery", 0, -1)
    bodies = [json.loads(m) for m in messages]
    return sorted(json.loads(base64.b64decode(b["body"]))[0][0] for b in bodies if b["headers"]["task"] == task)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_broker_stall_bounds_evaluation_posts_spares_fetches_and_beat_requeues_the_runs(api_key_factory, tmp_path):
    cli = Actor(via=MoveVia.CLI)
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    version_publish(name=NAME, kind="text", body="Answer: {{ query }}", commit_message="v1", actor=cli)
    label_move(name=NAME, label=PRODUCTION, version=1, actor=cli, reason="ship")
    dataset_create(
        name="stall-cases", scorers=["exact_match"], cases=[{"variables": {"query": "q"}, "expected": "a"}], actor=cli
    )
    _, writer = api_key_factory("write", name="writer")
    _, reader = api_key_factory("read", name="reader")
    evaluate = {"prompt": NAME, "version": 1, "dataset": "stall-cases"}

    with private_redis() as (url, redis_server):
        # No worker runs here, so the provider is never called; runs only need one configured to be queued.
        env = {
            "DATABASE_URL": database_url(connection.settings_dict),
            "REDIS_URL": url,
            "LLM_BASE_URL": "http://127.0.0.1:9/v1",
        }
        with gunicorn(env, tmp_path, workers=1, threads=4) as server:
            api = httpx.Client(base_url=server.url, timeout=30)
            healthy = api.post("/api/v1/evaluations", json=evaluate, headers={"Authorization": f"Bearer {writer}"})
            assert healthy.status_code == 202, healthy.text
            assert EvalRun.objects.get(pk=healthy.json()["id"]).enqueued_at is not None  # the broker took it
            assert api.get(f"/api/v1/prompts/{NAME}", headers={"Authorization": f"Bearer {reader}"}).status_code == 200

            redis_server.send_signal(signal.SIGSTOP)
            fetches: list[tuple[int, float]] = []
            stop = threading.Event()

            def fetch_loop() -> None:
                with httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {reader}"}) as c:
                    while not stop.is_set():
                        started = time.monotonic()
                        fetches.append((c.get(f"/api/v1/prompts/{NAME}").status_code, time.monotonic() - started))

            def post() -> tuple[int, float]:
                started = time.monotonic()
                with httpx.Client(base_url=server.url, timeout=30) as c:
                    status = c.post(
                        "/api/v1/evaluations", json=evaluate, headers={"Authorization": f"Bearer {writer}"}
                    ).status_code
                return status, time.monotonic() - started

            fetcher = threading.Thread(target=fetch_loop)
            fetcher.start()
            with ThreadPoolExecutor(8) as pool:
                posts = list(pool.map(lambda _: post(), range(8)))
            time.sleep(0.5)
            stop.set()
            fetcher.join()

            assert [status for status, _ in posts] == [202] * 8
            assert max(elapsed for _, elapsed in posts) < BOUND, posts
            assert fetches and all(status == 200 for status, _ in fetches)
            assert max(elapsed for _, elapsed in fetches) < BOUND, fetches
            print(
                f"\nbroker stall: 8 evaluation POSTs answered in "
                f"{min(e for _, e in posts):.2f}–{max(e for _, e in posts):.2f} s; "
                f"{len(fetches)} fetches meanwhile, slowest {max(e for _, e in fetches):.2f} s"
            )
            stalled = EvalRun.objects.exclude(pk=healthy.json()["id"])
            assert stalled.count() == 8 and set(stalled.values_list("state", "enqueued_at")) == {
                (RunState.QUEUED, None)
            }

            # An alert raised while the broker is stalled: its delivery waits, unqueued, as the runs do.
            AlertChannel.objects.create(name="ops", kind="email", target="ops@example.com")
            took = django_script(
                "import time\nfrom rollout import alerts\nstarted = time.monotonic()\n"
                "alerts.raise_alert('rollback', 'warning', 'rolled back', 'why')\nprint(time.monotonic() - started)",
                env,
            )
            assert float(took) < BOUND
            delivery = AlertDelivery.objects.get()
            assert (delivery.status, delivery.enqueued_at) == (DeliveryStatus.PENDING, None)

            redis_server.send_signal(signal.SIGCONT)
            EvalRun.objects.update(created_at=F("created_at") - timedelta(minutes=1))  # past the sweep's grace period
            delivery.alert.__class__.objects.update(created_at=F("created_at") - timedelta(minutes=1))
            out = django_script(
                "from experiments.tasks import evaluation_requeue\nfrom rollout.tasks import requeue_deliveries\n"
                "print(evaluation_requeue(), requeue_deliveries())",
                env,
            )
            stalled_ids = sorted(stalled.values_list("pk", flat=True))
            assert out == f"{stalled_ids} {[delivery.pk]}"
            assert set(stalled_ids) <= set(queued_ids(url, "experiments.evaluation_run"))  # waiting for a worker now
            assert queued_ids(url, "rollout.tasks.deliver_alert") == [delivery.pk]

    assert not EvalRun.objects.filter(enqueued_at__isnull=True).exists()
    assert not AlertDelivery.objects.filter(enqueued_at__isnull=True).exists()
    # Beat runs the sweeps every 10 s.
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"experiments.evaluation_requeue", "rollout.tasks.requeue_deliveries"} <= schedule
