"""Benchmark: score ingestion through the batch API, `POST /api/v1/scores`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/promptreg python tests/bench/ingest.py [--batches 40]

Runs on a throwaway test database. Each request carries 1,000 scores of an
experiment (quality_score + latency_ms each, so 2,000 values; `--metrics 1`: quality_score only), sessions of ~3
scores, through Django's full request stack (middleware, auth, JSON, validation,
insert, running sums), in-process so no network is timed. Baseline in the same
run: the same values stored with a plain `bulk_create` (no validation, no sums).
Goal: ≥ 5,000 scores/s.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from _setup import fixture_experiment, throwaway_database
from django.test import Client  # noqa: E402

BATCH = 1000


def batches(experiment, count: int, metrics: int = 2, seed: int = 1):
    rng = random.Random(seed)
    number = 0
    for b in range(count):
        items = []
        for i in range(BATCH):
            session = f"s{(b * BATCH + i) // 3}"
            variant_version = 2 if experiment.assign(session) == "treatment" else 1
            items.append(
                {
                    "id": f"b{b}-{i}",
                    "prompt": "bench-system",
                    "version": variant_version,
                    "session_id": session,
                    "experiment": experiment.pk,
                    "metrics": dict(
                        list({"quality_score": rng.random(), "latency_ms": rng.gauss(400, 60)}.items())[:metrics]
                    ),
                }
            )
            number += 1
        yield json.dumps({"scores": items})


def baseline(experiment, count: int, metrics: int) -> float:
    from experiments.models import Score

    rows = [
        Score(
            client_id=f"base{b}-{i}-{m}",
            prompt_id=experiment.prompt_id,
            version_id=experiment.control_version_id,
            session_id=f"s{i}",
            metric=m,
            value=0.5,
            timestamp=experiment.created_at,
        )
        for b in range(count)
        for i in range(BATCH)
        for m in ("quality_score", "latency_ms")[:metrics]
    ]
    start = time.perf_counter()
    for k in range(count):
        Score.objects.bulk_create(rows[k * metrics * BATCH : (k + 1) * metrics * BATCH], batch_size=metrics * BATCH)
    return count * BATCH / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--metrics", type=int, choices=(1, 2), default=2, help="metrics per score (rows per score)")
    args = parser.parse_args()
    with throwaway_database():
        experiment, secret = fixture_experiment()
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_HOST="localhost")
        bodies = list(batches(experiment, args.batches, args.metrics))
        client.post("/api/v1/scores", bodies[0], content_type="application/json")  # warm-up (not timed)
        times = []
        for body in bodies[1:]:
            start = time.perf_counter()
            response = client.post("/api/v1/scores", body, content_type="application/json")
            times.append(time.perf_counter() - start)
            assert response.status_code == 200 and response.json()["values_stored"] == args.metrics * BATCH, (
                response.content
            )
        replay = bodies[1]
        start = time.perf_counter()
        assert (
            client.post("/api/v1/scores", replay, content_type="application/json").json()["values_duplicate"]
            == args.metrics * BATCH
        )
        replay_s = time.perf_counter() - start
        api_rate = len(times) * BATCH / sum(times)
        base_rate = baseline(experiment, min(args.batches, 20), args.metrics)
        print(f"requests of {BATCH} scores ({args.metrics} metric(s) each): {len(times)}")
        print(f"per request: median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
        print(f"API ingestion:            {api_rate:,.0f} scores/s  (goal ≥ 5,000)")
        print(f"baseline bulk_create:     {base_rate:,.0f} scores/s  (no validation, no running sums)")
        print(f"idempotent replay of a batch: {replay_s * 1000:.0f} ms")
        print("PASS" if api_rate >= 5000 else "BELOW GOAL")


if __name__ == "__main__":
    main()
