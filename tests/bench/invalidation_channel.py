"""Measurement behind the serving layer's choice: pub/sub channel vs RESP3 CLIENT TRACKING.

    REDIS_URL=redis://127.0.0.1:6379/14 python tests/bench/invalidation_channel.py [--changes 2000]

For each mechanism, a writer makes `--changes` changes to a generation key and a listener on
its own connection waits for the invalidation. Prints the writer's call time and the time until
the listener has the invalidation (p50, p99). Pub/sub: `MULTI; SET; PUBLISH; EXEC` (what
`rollout.serving` does). Tracking: a plain `SET`, the listener in `CLIENT TRACKING on BCAST
PREFIX pr:bench:`. Then shows that tracking's invalidations ignore the DB number: a write in
another DB of the same server reaches the tracker (checked on a private redis-server, so no
other DB of a shared Redis is touched).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.redis_server import redis_server  # noqa: E402

CHANNEL = "bench:invalidation-channel"


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    return f"p50 {ordered[len(ordered) // 2] * 1e6:5.0f} µs, p99 {ordered[int(len(ordered) * 0.99)] * 1e6:5.0f} µs"


def pubsub(url: str, changes: int) -> tuple[list[float], list[float]]:
    writer = redis.Redis.from_url(url)
    listener = redis.Redis.from_url(url, protocol=2).pubsub()
    listener.subscribe(CHANNEL)
    listener.get_message(timeout=1)
    calls, delivered = [], []
    for i in range(changes):
        start = time.perf_counter()
        pipe = writer.pipeline(transaction=True)
        pipe.set("pr:bench:g", i)
        pipe.publish(CHANNEL, "p:bench")
        pipe.execute()
        calls.append(time.perf_counter() - start)
        message = None
        while message is None or message["type"] != "message":
            message = listener.get_message(timeout=1)
        delivered.append(time.perf_counter() - start)
    writer.delete("pr:bench:g")
    return calls, delivered


def tracking_connection(url: str, prefix: str):
    connection = redis.Redis.from_url(url, protocol=3).connection_pool.make_connection()
    connection.connect()
    connection.send_command("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", prefix)
    connection.read_response()
    received: list = []
    connection._parser.set_invalidation_push_handler(received.append)
    return connection, received


def tracking(url: str, changes: int) -> tuple[list[float], list[float]]:
    writer = redis.Redis.from_url(url)
    connection, received = tracking_connection(url, "pr:bench:")
    calls, delivered = [], []
    for i in range(changes):
        start = time.perf_counter()
        writer.set("pr:bench:g", i)
        calls.append(time.perf_counter() - start)
        seen = len(received)
        while len(received) == seen and connection.can_read(timeout=1):
            connection._parser.read_response(push_request=True)
        delivered.append(time.perf_counter() - start)
    writer.delete("pr:bench:g")
    return calls, delivered


def tracking_ignores_db_numbers() -> bool:
    with tempfile.TemporaryDirectory() as directory, redis_server(Path(directory)) as server:
        connection, received = tracking_connection(server.url, "pr:g:")
        redis.Redis(port=server.port, db=3).set("pr:g:x", "1")
        while connection.can_read(timeout=0.5):
            connection._parser.read_response(push_request=True)
        return bool(received)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=2000)
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14"
    print(f"load average: {os.getloadavg()[0]:.2f}; {args.changes} changes each")
    for name, run in (("pub/sub", pubsub), ("tracking", tracking), ("pub/sub", pubsub), ("tracking", tracking)):
        calls, delivered = run(url, args.changes)
        print(f"{name:9} writer call {percentiles(calls)} | invalidation received {percentiles(delivered)}")
    print(f"a write in DB 3 invalidates a tracker on DB 0: {tracking_ignores_db_numbers()}")


if __name__ == "__main__":
    main()
