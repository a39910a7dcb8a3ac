"""Benchmark: staleness under rollbacks, through a real 2-worker gunicorn on PostgreSQL + Redis.

    python tests/bench/storm.py storm [--seconds 20] [--threads 16]
    python tests/bench/storm.py rollbacks [--count 1000] [--connections 8]

`storm`: 16 threads fetch `GET /api/v1/prompts/bench/storm-system` through 2 gunicorn
workers (4 threads each) while another thread moves production forward and rolls it back
through the API for 20 s; every fetch is checked against the label's history (a fetch that
started after a change returned must serve that change's version or a later overlapping one).
Prints fetches, changes and stale answers.

`rollbacks`: 1,000 rollbacks (each after a move forward), one at a time; as soon as a rollback
returns, each of 8 keep-alive connections (spread over both workers; the access log shows
which), one after the other, fetches until it sees the new version. Prints the time from the
rollback's return to the first fetch's answer with the new version (p50, p99, max over all
rollbacks), and stale answers: fetches sent after the return that got the old version (goal 0).

Same environment as tests/bench/fetch.py (DATABASE_URL / REDIS_URL or its defaults; the
database is created and migrated if needed; review gates are switched off in that database).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.bench.fetch import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, ensure_database, manage  # noqa: E402
from tests.gunicorn_server import gunicorn  # noqa: E402
from tests.storm import run_storm  # noqa: E402

PROMPT = "bench/storm-system"
URL = f"/api/v1/prompts/{PROMPT}"


def seed(env: dict[str, str]) -> tuple[list[int], str, str]:
    """Three fresh versions (v1 live), a read key and a deploy key."""
    manage(env, "migrate", "--noinput", "-v0")
    manage(
        env,
        "shell",
        "-c",
        "from promptreg.models import ReviewPolicy; ReviewPolicy.objects.update(requires_review=False, "
        "requires_eval=False)",
    )
    versions = []
    for n in range(3):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(f"Storm {n} {time.time()}: answer {{{{ customer }}}}.\n")
        out = manage(env, "prompt", "publish", PROMPT, f.name, "--message", "storm bench")
        os.unlink(f.name)
        versions.append(int(out.split(" v", 1)[1].split(" ", 1)[0]))
    manage(env, "prompt", "activate", PROMPT, str(versions[0]), "--reason", "bench", "--override")
    reader = json.loads(manage(env, "create_api_key", "storm-reader", "--scopes", "read", "--json"))["secret"]
    deployer = json.loads(manage(env, "create_api_key", "storm-deployer", "--scopes", "deploy", "--json"))["secret"]
    return versions, reader, deployer


def storm(server, versions, reader, deployer, args) -> None:
    result = run_storm(
        server.url, PROMPT, reader, deployer, versions=versions, seconds=args.seconds, threads=args.threads
    )
    stale = result.stale()
    import pickle

    with open("/tmp/serve/storm.pkl", "wb") as out:
        pickle.dump(result, out)
    errors = len(result.fetches) - result.ok_fetches
    print(
        f"{args.seconds:g} s, {args.threads} reader threads, 2 workers: {len(result.fetches):,} fetches "
        f"({len(result.fetches) / args.seconds:,.0f}/s), {len(result.changes)} changes "
        f"({sum(1 for i, _ in enumerate(result.changes) if i % 2)} rollbacks), {errors} errors, stale: {len(stale)}"
    )
    for fetch, allowed in stale[:5]:
        print(f"  stale: served v{fetch.version}, allowed {sorted(allowed)}")


def rollbacks(server, versions, reader, deployer, args) -> None:
    readers = [
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {reader}"}, timeout=10)
        for _ in range(args.connections)
    ]
    deploy = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {deployer}"}, timeout=30)
    start_line = server.log_lines()
    for client in readers:
        client.get(URL)
    waits: list[float] = []
    stale = fetches = 0
    current = versions[0]
    for _ in range(args.count):
        forward = versions[(versions.index(current) + 1) % len(versions)]
        moved = deploy.post(f"{URL}/labels/production", json={"version": forward, "reason": "bench"})
        assert moved.status_code == 200, moved.text
        for client in readers:  # every connection serves the move (and caches it) before the rollback
            while client.get(URL).json()["version"] != forward:
                pass
        rolled = deploy.post(f"{URL}/rollback", json={"reason": "bench"})
        returned = time.perf_counter()
        assert rolled.status_code == 200, rolled.text
        current = rolled.json()["version"]
        for n, client in enumerate(readers):
            while True:
                fetches += 1
                if client.get(URL).json()["version"] == current:
                    if n == 0:
                        waits.append(time.perf_counter() - returned)
                    break
                stale += 1
    pids = set(server.worker_pids(start_line))
    waits.sort()
    print(
        f"{args.count} rollbacks × {args.connections} connections (served by {len(pids)} worker processes): "
        f"{fetches:,} fetches after a return, stale: {stale}"
    )
    print(
        f"rollback return → first fetch answered with the new version: p50 {waits[len(waits) // 2] * 1000:.2f} ms, "
        f"p99 {waits[int(len(waits) * 0.99)] * 1000:.2f} ms, max {waits[-1] * 1000:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("storm", "rollbacks"))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    ensure_database(database_url)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + "x" * 60,
        "HTTPS_ONLY": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    versions, reader, deployer = seed(env)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with (
        tempfile.TemporaryDirectory() as logs,
        gunicorn(
            {k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")},
            Path(logs),
            workers=2,
            threads=4,
            access_log=args.mode == "rollbacks",
        ) as server,
    ):
        (storm if args.mode == "storm" else rollbacks)(server, versions, reader, deployer, args)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
