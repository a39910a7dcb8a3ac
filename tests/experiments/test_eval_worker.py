"""Evaluations end to end through a real `celery worker` process (not eager mode), against the fake provider.

On PostgreSQL + Redis the broker is Redis; on the SQLite default it is the
filesystem transport configured in settings.
"""

from __future__ import annotations

import pytest
from django.db import close_old_connections

from experiments.evaluation import evaluation_start
from experiments.models import EvalResult, EvalRun, RunState
from tests.celery_worker import Worker, purge_queue, wait_for
from tests.experiments.conftest import SERVER, make_dataset

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(120),
]


def worker_env(fake, **extra) -> dict[str, str]:
    return {
        "LLM_BASE_URL": fake.base_url,
        "LLM_MODEL": "fake-model",
        "LLM_BACKOFF": "0.01",
        "LLM_TIMEOUT": "5",
        **extra,
    }


def state(run_id: int) -> EvalRun:
    close_old_connections()
    return EvalRun.objects.get(pk=run_id)


@pytest.fixture
def workers():
    purge_queue()
    started: list[Worker] = []

    def start(env: dict[str, str]) -> Worker:
        worker = Worker(env)
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()


def test_an_evaluation_runs_on_the_worker_from_queue_to_results(fake_llm, publish, workers, client, api_key_factory):
    workers(worker_env(fake_llm, LLM_CONCURRENCY="4"))
    dataset = make_dataset("worker-set", answers=["Paris", "Rome", "Berlin", "Madrid", "Lisbon", "Lyon"] * 5)
    version = publish(name="geo-answer", body="{{ query }}")
    run = evaluation_start(version=version, dataset=dataset, actor=SERVER)  # queued on commit

    done = wait_for(
        lambda: state(run.pk).state in (RunState.DONE, RunState.FAILED) and state(run.pk), 60, "the run to finish"
    )

    assert done.state == RunState.DONE, done.error
    assert done.done == 30 and EvalResult.objects.filter(run=run).count() == 30
    assert len(fake_llm.requests) == 30
    _, secret = api_key_factory("read")
    body = client.get(f"/api/v1/evaluations/{run.pk}", HTTP_AUTHORIZATION=f"Bearer {secret}").json()
    assert body["state"] == "done" and body["progress"] == {"done": 30, "total": 30}
    # Every sixth answer is Lyon where Vienna is expected: 25 of 30 exact matches.
    assert body["metrics"]["exact_match"]["mean"] == pytest.approx(25 / 30)
    lo, hi = body["metrics"]["exact_match"]["ci"]
    assert lo < 25 / 30 < hi


def test_a_run_survives_its_worker_dying(fake_llm, publish, workers):
    env = worker_env(fake_llm, LLM_CONCURRENCY="2", EVAL_STALE_SECONDS="2")
    first = workers(env)
    dataset = make_dataset("long", answers=["[[sleep:0.05]]"] * 80)
    version = publish(name="geo-answer", body="{{ query }}")
    run = evaluation_start(version=version, dataset=dataset, actor=SERVER)
    wait_for(lambda: state(run.pk).done >= 16, 30, "some results")

    first.kill()
    crashed = state(run.pk)
    assert crashed.state == RunState.RUNNING and 16 <= crashed.done < 80

    workers(env)  # a new worker takes the stale run over
    done = wait_for(lambda: state(run.pk).state == RunState.DONE and state(run.pk), 60, "the resumed run to finish")
    assert done.done == 80 and done.worker != crashed.worker
    assert EvalResult.objects.filter(run=run).count() == 80
    assert EvalResult.objects.filter(run=run).values("case").distinct().count() == 80
    # Only the cases without a result were asked again (plus the few in flight when it died).
    assert len(fake_llm.requests) <= 80 + 8


def test_provider_down_on_the_worker_fails_the_run_with_the_reason(publish, workers, settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    workers({"LLM_BASE_URL": "http://127.0.0.1:9/v1", "LLM_BACKOFF": "0.01"})
    dataset = make_dataset("down", answers=["Paris"] * 5)
    version = publish(name="geo-answer", body="{{ query }}")
    run = evaluation_start(version=version, dataset=dataset, actor=SERVER)
    failed = wait_for(lambda: state(run.pk).state == RunState.FAILED and state(run.pk), 60, "the run to fail")
    assert "could not connect" in failed.error and "127.0.0.1:9" in failed.error
    assert failed.done == 0 and not EvalResult.objects.filter(run=run).exists()
