"""Benchmark: score ingestion through the batch API, `POST /api/v1/scores`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/promptreg python tests/bench/ingest.py [--batches 40]

Runs on a throwaway test database. Each request carries 1,000 scores of an
experiment (quality_score + latency_ms each, so 2,000 values; `--metrics 1`: quality_score only), sessions of ~3
scores, through Django's full request stack (middleware, auth, JSON, validation,
insert, running sums), in-process so no network is timed. Baseline in the same
run, alternating with the requests: as many equivalent rows stored with a plain `bulk_create` (no
validation, no sums). Besides wall time it reports CPU per request, of this process and of the PostgreSQL
backend (read from /proc: the database must run on this machine).
Goal: ≥ 5,000 scores/s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
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


def baseline_rows(experiment, b: int, metrics: int) -> list:
    """Score rows equivalent to request `b` (same count and shape), for the baseline's plain `bulk_create`."""
    from experiments.models import Score

    return [
        Score(
            client_id=f"base{b}-{i}",
            prompt_id=experiment.prompt_id,
            version_id=experiment.control_version_id,
            session_id=f"s{(b * BATCH + i) // 3}",
            metric=m,
            value=0.5,
            timestamp=experiment.created_at,
        )
        for i in range(BATCH)
        for m in ("quality_score", "latency_ms")[:metrics]
    ]


class Meter:
    """Wall time, this process's CPU and the database server process's CPU (PostgreSQL on this machine: its
    backend's /proc entry; on a loaded machine CPU per request is steadier than wall time)."""

    def __init__(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.stat = f"/proc/{cursor.fetchone()[0]}/stat"
        self.ticks = os.sysconf("SC_CLK_TCK")
        self.totals = [0.0, 0.0, 0.0]

    def _server_cpu(self) -> float:
        with open(self.stat) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.ticks  # utime + stime

    @contextlib.contextmanager
    def measure(self):
        start = (time.perf_counter(), time.process_time(), self._server_cpu())
        yield
        end = (time.perf_counter(), time.process_time(), self._server_cpu())
        for k in range(3):
            self.totals[k] += end[k] - start[k]

    def per_batch(self, batches: int) -> str:
        wall, client, server = (t / batches * 1000 for t in self.totals)
        return f"{wall:5.0f} ms wall, CPU {client:4.0f} ms here + {server:4.0f} ms in PostgreSQL"


def main() -> None:
    from experiments.models import Score

    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--metrics", type=int, choices=(1, 2), default=2, help="metrics per score (rows per score)")
    args = parser.parse_args()
    with throwaway_database():
        experiment, secret = fixture_experiment()
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_HOST="localhost")
        bodies = list(batches(experiment, args.batches, args.metrics))
        client.post("/api/v1/scores", bodies[0], content_type="application/json")  # warm-up (not timed)
        Score.objects.bulk_create(baseline_rows(experiment, 0, args.metrics))
        api, base = Meter(), Meter()
        times = []
        # Alternating request by request, so both see the same machine load.
        for b, body in enumerate(bodies[1:], start=1):
            start = time.perf_counter()
            with api.measure():
                response = client.post("/api/v1/scores", body, content_type="application/json")
            times.append(time.perf_counter() - start)
            assert response.status_code == 200 and response.json()["values_stored"] == args.metrics * BATCH, (
                response.content
            )
            rows = baseline_rows(experiment, b, args.metrics)
            with base.measure():
                Score.objects.bulk_create(rows)
        replay = bodies[1]
        start = time.perf_counter()
        assert (
            client.post("/api/v1/scores", replay, content_type="application/json").json()["values_duplicate"]
            == args.metrics * BATCH
        )
        replay_s = time.perf_counter() - start
        n = len(times)
        api_rate = n * BATCH / api.totals[0]
        base_rate = n * BATCH / base.totals[0]
        print(f"requests of {BATCH} scores ({args.metrics} metric(s) each): {n}")
        print(f"per request: median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
        print(f"API ingestion:        {api_rate:7,.0f} scores/s  (goal ≥ 5,000); per request {api.per_batch(n)}")
        print(f"baseline bulk_create: {base_rate:7,.0f} scores/s  (no validation, no sums); {base.per_batch(n)}")
        print(f"API / baseline: {api_rate / base_rate:.2f}")
        print(f"idempotent replay of a batch: {replay_s * 1000:.0f} ms")
        print("PASS" if api_rate >= 5000 else "BELOW GOAL")


if __name__ == "__main__":
    main()
