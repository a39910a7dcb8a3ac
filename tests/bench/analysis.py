"""Benchmark: experiment analysis time at 10k, 100k and 1M scores (PostgreSQL).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/promptreg \
        python tests/bench/analysis.py [--sizes 10000,100000,1000000]

Runs on a throwaway test database. For each size, one experiment gets that many
`quality_score` values (3 per session, 50/50 split), generated in SQL, with the
per-session and per-variant running sums that ingestion keeps. Timed (median of
25): the analysis (`experiment_analyse`: read the sums, run the tests, decide)
and the full `GET /api/v1/experiments/{id}`. Baseline in the same run: the
textbook query that averages per session over the raw scores, which grows with
the number of scores. Goal: ≤ 200 ms at 1M and ≤ 3× the 10k time.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _setup import connection, fixture_experiment, throwaway_database
from django.test import Client  # noqa: E402

REPEAT = 25

GENERATE = """
INSERT INTO experiments_score
    (client_id, prompt_id, version_id, session_id, experiment_id, variant, metric, value, timestamp)
SELECT 'e' || %(e)s || '-' || g, %(prompt)s,
       CASE WHEN (g / 3) %% 2 = 0 THEN %(v1)s ELSE %(v2)s END,
       's' || (g / 3), %(e)s,
       CASE WHEN (g / 3) %% 2 = 0 THEN 'control' ELSE 'treatment' END,
       'quality_score',
       random() * 0.5 + CASE WHEN (g / 3) %% 2 = 0 THEN 0.40 ELSE 0.41 END,
       now() - make_interval(secs => g)
FROM generate_series(0, %(n)s - 1) AS g
"""
SESSIONS = """
INSERT INTO experiments_experimentsession (experiment_id, metric, session_id, variant, n, total)
SELECT experiment_id, metric, session_id, min(variant), count(*), sum(value)
FROM experiments_score WHERE experiment_id = %(e)s GROUP BY experiment_id, metric, session_id
"""
TOTALS = """
INSERT INTO experiments_experimenttotal (experiment_id, variant, metric, sessions, sum, sum_sq, scores)
SELECT experiment_id, variant, metric, count(*), sum(total / n), sum((total / n) * (total / n)), sum(n)
FROM experiments_experimentsession WHERE experiment_id = %(e)s GROUP BY experiment_id, variant, metric
"""
NAIVE = """
SELECT variant, count(*), sum(m), sum(m * m) FROM (
  SELECT variant, session_id, avg(value) AS m FROM experiments_score
  WHERE experiment_id = %(e)s AND metric = 'quality_score' GROUP BY variant, session_id
) per_session GROUP BY variant
"""


def timed(fn) -> float:
    runs = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if connection.vendor != "postgresql":
        raise SystemExit("This benchmark generates data with PostgreSQL's generate_series: set DATABASE_URL.")
    from experiments.analysis import experiment_analyse
    from experiments.creation import experiment_create
    from experiments.models import Experiment, ExperimentState
    from promptreg.models import MoveVia
    from promptreg.services import Actor

    with throwaway_database():
        base, secret = fixture_experiment()
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_HOST="localhost")
        results = []
        for n in sizes:
            experiment = experiment_create(
                actor=Actor(via=MoveVia.CLI),
                prompt="bench-system",
                label=f"bench-{n}",
                control_version=1,
                treatment_version=2,
                minimum_detectable_effect=0.01,
                baseline_sd=0.15,
            )
            Experiment.objects.filter(pk=experiment.pk).update(
                state=ExperimentState.RUNNING, started_at=base.started_at
            )
            params = {
                "e": experiment.pk,
                "prompt": base.prompt_id,
                "v1": base.control_version_id,
                "v2": base.treatment_version_id,
                "n": n,
            }
            with connection.cursor() as cursor:
                start = time.perf_counter()
                for sql in (GENERATE, SESSIONS, TOTALS):
                    cursor.execute(sql, params)
                cursor.execute(
                    "ANALYZE experiments_score; ANALYZE experiments_experimentsession; ANALYZE "
                    "experiments_experimenttotal"
                )
                load_s = time.perf_counter() - start
            experiment = Experiment.objects.select_related("prompt", "control_version", "treatment_version").get(
                pk=experiment.pk
            )
            analysis = experiment_analyse(experiment)
            assert analysis.primary["control"]["n"] + analysis.primary["treatment"]["n"] == -(-n // 3)
            analyse_ms = timed(lambda: experiment_analyse(experiment))  # noqa: B023 — called within this iteration
            api_ms = timed(lambda: client.get(f"/api/v1/experiments/{experiment.pk}"))  # noqa: B023 — called within this iteration

            def naive():
                with connection.cursor() as cursor:
                    cursor.execute(NAIVE, params)  # noqa: B023 — called within this iteration
                    cursor.fetchall()

            naive_ms = timed(naive)
            results.append((n, analyse_ms, api_ms, naive_ms, analysis.decision))
            print(
                f"{n:>9,} scores: analysis {analyse_ms:6.2f} ms   GET /experiments/id {api_ms:6.2f} ms   "
                f"baseline per-session query {naive_ms:8.1f} ms   ({analysis.decision}; data loaded in {load_s:.1f} s)",
                flush=True,
            )
        first, last = results[0], results[-1]
        ratio = last[1] / first[1]
        print(
            f"analysis at {last[0]:,} / at {first[0]:,}: {ratio:.2f}x (goal ≤ 3x); at {last[0]:,}: {last[1]:.2f} ms "
            f"(goal ≤ 200 ms)"
        )
        print("PASS" if ratio <= 3 and last[1] <= 200 else "BELOW GOAL")


if __name__ == "__main__":
    main()
