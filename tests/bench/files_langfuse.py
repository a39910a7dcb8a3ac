"""Benchmark: `prompts import` of many files, and the Langfuse fetch beside the /api/v1 fetch.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/promptreg REDIS_URL=redis://127.0.0.1:6379/15 \
        python tests/bench/files_langfuse.py [--prompts 300] [--fetches 300]

Runs on a throwaway test database. Import: N text prompt files are exported, then
timed: reading and validating them (the baseline every run pays), an import that
changes nothing (idempotent second run), and an import after editing 10% of the
files. Goal: the no-op import costs at most ~2x the baseline (one query per prompt),
and the edited import grows with the edits, not with N. Fetch (in-process test
client, median per request): `GET /api/public/v2/prompts/{name}` (Basic auth)
against `GET /api/v1/prompts/{name}` (Bearer); both from the serving cache (Redis, and
each process's memory when warm).
"""

from __future__ import annotations

import argparse
import base64
import statistics
import tempfile
import time
from pathlib import Path

from _setup import throwaway_database
from django.test import Client  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=300)
    parser.add_argument("--fetches", type=int, default=300)
    args = parser.parse_args()
    from promptreg import file_format, files
    from promptreg.models import ApiKey, MoveVia, ReviewPolicy
    from promptreg.services import Actor, label_move, version_publish

    cli = Actor(via=MoveVia.CLI)
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    for i in range(args.prompts):
        version_publish(
            name=f"bench/p{i}-system",
            kind="text",
            body=f"Prompt {i} for {{{{ company }}}}.\n" * 20,
            commit_message="seed",
            actor=cli,
        )
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        files.export_dir(directory)
        baseline = min(timed(lambda: file_format.read_dir(directory)) for _ in range(3))
        noop = min(timed(lambda: files.import_dir(directory)) for _ in range(3))
        for path in sorted(directory.rglob("*.txt"))[::10]:
            path.write_text(path.read_text().replace("Prompt", "A prompt"))
        edited = timed(lambda: files.import_dir(directory))
    print(
        f"import of {args.prompts} files: read+validate (baseline) {baseline * 1000:.0f} ms, "
        f"no-op import {noop * 1000:.0f} ms ({noop / baseline:.1f}x baseline), "
        f"import with {args.prompts // 10} edited {edited * 1000:.0f} ms"
    )

    label_move(name="bench/p0-system", label="production", version=1, actor=cli, reason="bench")
    key, secret = ApiKey.issue(name="bench", scopes=["read"])
    basic = "Basic " + base64.b64encode(f"{key.public_id}:{secret}".encode()).decode()
    client = Client(HTTP_HOST="localhost")
    cases = {
        "langfuse GET /api/public/v2/prompts/bench%2Fp0-system": ("/api/public/v2/prompts/bench%2Fp0-system", basic),
        "GET /api/v1/prompts/bench/p0-system": ("/api/v1/prompts/bench/p0-system", f"Bearer {secret}"),
    }
    results = {name: [] for name in cases}
    for _ in range(args.fetches):  # interleaved so drift hits both alike
        for name, (path, auth) in cases.items():
            start = time.perf_counter()
            response = client.get(path, HTTP_AUTHORIZATION=auth)
            results[name].append(time.perf_counter() - start)
            assert response.status_code == 200, response.content
    for name, times in results.items():
        print(
            f"{name}: median {statistics.median(times) * 1000:.2f} ms, p99 "
            f"{sorted(times)[int(len(times) * 0.99)] * 1000:.2f} ms"
        )


if __name__ == "__main__":
    with throwaway_database():
        main()
