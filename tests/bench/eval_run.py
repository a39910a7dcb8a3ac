"""Benchmark: one evaluation run of 1,000 cases end to end through a real Celery worker.

The provider is the local fake answering every call in 50 ms; the run uses 16
concurrent calls, so the ideal is 1,000 × 50 ms / 16 ≈ 3.1 s. Measured in the
same run as a baseline: the bare client (same thread pool, no worker, no
database). The time counted is from the run's commit (which queues the task)
to the database saying `done`, with every result and metric written.

    DATABASE_URL=postgres://… REDIS_URL=redis://… python tests/bench/eval_run.py   # on a throwaway test database
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from django.conf import settings  # noqa: E402
from django.db import close_old_connections  # noqa: E402

from experiments.eval_datasets import dataset_create
from experiments.evaluation import evaluation_start
from experiments.llm import LLMClient, LLMConfig  # noqa: E402
from experiments.models import EvalRun, RunState  # noqa: E402
from promptreg.models import MoveVia  # noqa: E402
from promptreg.services import Actor, version_publish  # noqa: E402
from tests.bench._setup import throwaway_database  # noqa: E402  (sets Django up)
from tests.celery_worker import Worker, purge_queue, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

CASES, LATENCY, CONCURRENCY = 1000, 0.05, 16
IDEAL = CASES * LATENCY / CONCURRENCY
GOAL = 1.5 * IDEAL


@contextmanager
def fake_provider():
    """The fake provider in its own process, so its CPU time does not compete with the client's."""
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fake_llm.py"), "--delay", str(LATENCY)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield server.stdout.readline().strip()
    finally:
        server.kill()
        server.wait(timeout=10)


def bare_client(base_url: str) -> float:
    client = LLMClient(LLMConfig(base_url=base_url, model="bench", concurrency=CONCURRENCY))
    messages = [[{"role": "user", "content": f"case {i} [[answer:Paris]]"}] for i in range(CASES)]
    started = time.perf_counter()
    with client, ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(client.chat, messages))
    return time.perf_counter() - started


def through_worker(base_url: str) -> tuple[float, EvalRun]:
    actor = Actor(via=MoveVia.CLI)
    stamp = time.strftime("%Y%m%d%H%M%S")
    cases = [{"variables": {"query": f"case {i} [[answer:Paris]]"}, "expected": "Paris"} for i in range(CASES)]
    dataset = dataset_create(name=f"bench-{stamp}", scorers=["exact_match", "reference_f1"], cases=cases, actor=actor)
    version = version_publish(
        name=f"bench/eval-{stamp}", kind="text", body="{{ query }}", commit_message="benchmark", actor=actor
    )
    purge_queue()
    worker = Worker({"LLM_BASE_URL": base_url, "LLM_MODEL": "bench", "LLM_CONCURRENCY": str(CONCURRENCY)}).wait_ready()
    try:
        started = time.perf_counter()
        run = evaluation_start(version=version, dataset=dataset, actor=actor)  # autocommit: queued at once

        def finished():
            close_old_connections()
            return EvalRun.objects.filter(pk=run.pk, state__in=(RunState.DONE, RunState.FAILED)).first()

        run = wait_for(finished, 120, "the run", interval=0.02)
        return time.perf_counter() - started, run
    finally:
        worker.stop()


def main() -> None:
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    broker = "redis" if settings.REDIS_URL else "filesystem"
    print(
        f"eval_run: {CASES} cases, provider latency {LATENCY * 1000:.0f} ms, concurrency {CONCURRENCY}; database "
        f"{engine}, broker {broker}"
    )
    with fake_provider() as base_url, throwaway_database():
        settings.LLM_BASE_URL = base_url
        bare = bare_client(base_url)
        elapsed, run = through_worker(base_url)
        assert run.state == RunState.DONE, run.error
        assert run.results.count() == CASES and run.metrics["exact_match"]["mean"] == 1.0
    print(f"ideal (1000 × 50 ms / 16)          {IDEAL:6.2f} s")
    print(f"baseline: bare client, no worker    {bare:6.2f} s  ({bare / IDEAL:.2f}× ideal)")
    print(
        f"end to end through the worker       {elapsed:6.2f} s  ({elapsed / IDEAL:.2f}× ideal, {elapsed / bare:.2f}× "
        f"baseline)"
    )
    print(f"goal ≤ 1.5× ideal = {GOAL:.2f} s: {'met' if elapsed <= GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
