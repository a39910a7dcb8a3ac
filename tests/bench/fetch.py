"""Benchmark: the prompt fetch endpoint against a bare Django view, same server, same run.

    python tests/bench/fetch.py [--duration 1.5] [--rounds 6] [--workers 2] [--threads 4] \
        [--prompts 1000] [--redis-down]

Starts gunicorn with production settings (DEBUG off, SECRET_KEY set, HTTPS_ONLY=false) on
PostgreSQL + Redis (DATABASE_URL / REDIS_URL, or the defaults below; the database is created
and migrated if needed), seeds a prompt and a read key with the management commands, then
drives `GET /api/v1/prompts/bench/fetch-system` and `GET /bench/constant` (a view returning a
constant JSON body, only in the bench URL conf) at concurrency 1, 8 and 32 with keep-alive
HTTP/1.1 connections, alternating the two endpoints in rounds so drift hits both alike.
Prints requests/s, p50 and p99 for each, and the ratios. Goal at concurrency 32: fetch
throughput ≥ 0.95× the bare view's and fetch p99 ≤ 1.5× the bare view's.

`--prompts 1000`: 1,000 distinct prompts, each connection fetching them in its own random
order (the set is larger than any hot set), after a warm-up of 6 ms per prompt at concurrency 8 (the figures
are for warm caches; a miss is resolved from the database). `--redis-down`: gunicorn gets a REDIS_URL nobody
listens on, so every fetch is served from the database (the fallback).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.gunicorn_server import gunicorn  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/promptreg_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
PROMPT = "bench/fetch-system"
FETCH_PATH = f"/api/v1/prompts/{PROMPT}"
BARE_PATH = "/bench/constant"
CONCURRENCY = (1, 8, 32)


@dataclass
class Sample:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # spent by the gunicorn processes and redis-server
    latencies: list[float] = field(default_factory=list)

    def add(self, other: Sample) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.seconds += other.seconds
        self.cpu_seconds += other.cpu_seconds
        self.latencies += other.latencies

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_seconds / self.requests * 1e6 if self.requests else float("nan")

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000 if ordered else float("nan")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (Linux /proc): the server-side cost,
    whatever else the machine is running."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_pids(master: int, redis_url: str) -> list[int]:
    """The gunicorn master, its workers, and redis-server."""
    import redis

    workers = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == master]
    return [master, *workers, int(redis.Redis.from_url(redis_url).info("server")["process_id"])]


def _ppid(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


# --- Setup ---------------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


SEED_MANY = """
from promptreg.models import MoveVia, Prompt
from promptreg.services import Actor, label_move, version_publish
cli = Actor(via=MoveVia.CLI)
for i in range({count}):
    name = f"bench/many-{{i:04d}}-system"
    if not Prompt.objects.filter(name=name, labels__name="production").exists():
        body = f"Prompt {{i}} for {{{{{{{{ customer }}}}}}}}. " * 20
        version_publish(name=name, kind="text", body=body, commit_message="bench", actor=cli)
        label_move(name=name, label="production", version=1, actor=cli, reason="bench", override=True)
"""


def seed_many(env: dict[str, str], count: int) -> list[str]:
    """`count` distinct production prompts (created once per database); returns their paths."""
    manage(env, "shell", "-c", SEED_MANY.format(count=count))
    return [f"/api/v1/prompts/bench/many-{i:04d}-system" for i in range(count)]


def seed(env: dict[str, str]) -> str:
    """A production prompt (a new version each run) and a read key; returns the key's secret."""
    manage(env, "migrate", "--noinput", "-v0")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("You are the support assistant for {{ company }}. Answer {{ customer }} concisely and kindly.\n" * 8)
    out = manage(
        env,
        "prompt",
        "publish",
        PROMPT,
        f.name,
        "--message",
        "bench run",
        "--config",
        '{"model": "m", "temperature": 0.2}',
    )
    os.unlink(f.name)
    version = out.split(" v", 1)[1].split(" ", 1)[0]
    manage(env, "prompt", "activate", PROMPT, version, "--reason", "bench", "--override")
    return json.loads(manage(env, "create_api_key", "bench-reader", "--scopes", "read", "--json"))["secret"]


# --- Load ----------------------------------------------------------------------------------


async def _connection_loop(host: str, port: int, requests: list[bytes], stop_at: float, sample: Sample) -> None:
    reader = writer = None
    order = random.sample(requests, len(requests))
    n = 0
    while time.perf_counter() < stop_at:
        if writer is None:
            reader, writer = await asyncio.open_connection(host, port)
        started = time.perf_counter()
        writer.write(order[n % len(order)])
        n += 1
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            lower = line.lower()
            if lower.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            elif lower.startswith(b"connection:") and b"close" in lower:
                close = True
        if length:
            await reader.readexactly(length)
        sample.latencies.append(time.perf_counter() - started)
        sample.requests += 1
        if not head.startswith(b"HTTP/1.1 200"):
            sample.errors += 1
        if close:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


async def _load(host: str, port: int, requests: list[bytes], concurrency: int, seconds: float) -> Sample:
    sample = Sample()
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(_connection_loop(host, port, requests, stop_at, sample) for _ in range(concurrency)))
    sample.seconds = time.perf_counter() - started
    return sample


def load(
    base_url: str, paths: str | list[str], secret: str, concurrency: int, seconds: float, pids: list[int] = ()
) -> Sample:
    parsed = urlparse(base_url)
    requests = [
        (
            f"GET {path} HTTP/1.1\r\nHost: {parsed.hostname}\r\nAuthorization: Bearer {secret}\r\n"
            "Accept: application/json\r\nConnection: keep-alive\r\n\r\n"
        ).encode()
        for path in ([paths] if isinstance(paths, str) else paths)
    ]
    cpu_before = cpu_seconds(pids)
    sample = asyncio.run(_load(parsed.hostname, parsed.port, requests, concurrency, seconds))
    sample.cpu_seconds = cpu_seconds(pids) - cpu_before
    return sample


# --- Main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=1.5, help="seconds per endpoint per round (default 1.5)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds per concurrency (default 6)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    parser.add_argument("--prompts", type=int, default=1, help="distinct prompts fetched uniformly (default 1)")
    parser.add_argument(
        "--redis-down", action="store_true", help="gunicorn's REDIS_URL points at a closed port: database fallback"
    )
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    if not database_url.startswith("postgres"):
        raise SystemExit("The benchmark runs on PostgreSQL: set DATABASE_URL=postgres://…")
    ensure_database(database_url)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + "x" * 60,
        "HTTPS_ONLY": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SETTINGS_MODULE": "tests.bench.settings",
    }
    secret = seed(env)
    fetch_paths = seed_many(env, args.prompts) if args.prompts > 1 else FETCH_PATH
    server_env = {k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    if args.redis_down:
        server_env["REDIS_URL"] = f"redis://127.0.0.1:{closed_port()}/0"
    print(
        f"gunicorn: {args.workers} workers × {args.threads} threads (gthread), PostgreSQL + "
        f"{'Redis stopped (database fallback)' if args.redis_down else 'Redis'}, DEBUG off; "
        f"{args.prompts} distinct prompt(s); {args.rounds} × {args.duration:g}s per endpoint and concurrency; "
        f"{os.cpu_count()} CPUs shared with the client; load average {os.getloadavg()[0]:.2f}"
    )
    with (
        tempfile.TemporaryDirectory() as logs,
        gunicorn(
            server_env,
            Path(logs),
            workers=args.workers,
            threads=args.threads,
            ready_path=BARE_PATH,
            access_log=False,
        ) as server,
    ):
        check = load(server.url, fetch_paths, secret, 1, 0.2)
        if check.errors or not check.requests:
            raise SystemExit("the fetch endpoint did not answer 200; is the seed right?")
        pids = server_pids(server.process.pid, redis_url)
        if args.prompts > 1:  # every prompt into Redis and each worker's memory before anything is timed
            load(server.url, fetch_paths, secret, 8, args.prompts * 0.006)
        rows = []
        for concurrency in CONCURRENCY:
            for paths in (BARE_PATH, fetch_paths):  # warm-up: connections, caches, code paths
                load(server.url, paths, secret, concurrency, 0.5)
            bare, fetch = Sample(), Sample()
            for _ in range(args.rounds):
                bare.add(load(server.url, BARE_PATH, secret, concurrency, args.duration, pids))
                fetch.add(load(server.url, fetch_paths, secret, concurrency, args.duration, pids))
            rows.append((concurrency, bare, fetch))

    print(
        f"\n{'conc':>4} {'endpoint':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
        f"{'server CPU µs/req':>18}"
    )
    for concurrency, bare, fetch in rows:
        for label, s in (("bare view", bare), ("fetch", fetch)):
            print(
                f"{concurrency:>4} {label:<10} {s.rps:>8.0f} {s.percentile(50):>8.2f} {s.percentile(99):>8.2f} "
                f"{s.errors:>6} {s.cpu_us_per_request:>18.0f}"
            )
    print(f"\n{'conc':>4} {'throughput fetch/bare':>22} {'p99 fetch/bare':>15} {'CPU/req bare/fetch':>19}")
    for concurrency, bare, fetch in rows:
        print(
            f"{concurrency:>4} {fetch.rps / bare.rps:>22.2f} {fetch.percentile(99) / bare.percentile(99):>15.2f} "
            f"{bare.cpu_us_per_request / fetch.cpu_us_per_request:>19.2f}"
        )
    _, bare, fetch = rows[-1]
    met = fetch.rps >= 0.95 * bare.rps and fetch.percentile(99) <= 1.5 * bare.percentile(99)
    print(
        f"\ngoal at concurrency 32 (≥ 0.95× throughput, p99 ≤ 1.5×): {'met' if met else 'NOT met'}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
