"""Reproduce the embedded broker's read-while-write race, and check the fix under the same load.

    python tests/bench/broker_race.py [--producers 4] [--messages 2000]

Producer processes publish numbered messages as fast as they can while one
consumer process polls, reads and acknowledges; both transports run the same
load in the same run, each on a fresh folder: kombu's filesystem transport
(the old embedded default) and `promptreg.embedded_broker` (the new one). Counts:
unreadable messages (each one a "JSONDecodeError … Unrecoverable error" that
stops a Celery worker), lost and duplicated messages.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from queue import Empty

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kombu import Connection  # noqa: E402

TRANSPORTS = {
    "kombu filesystem (old)": "filesystem",
    "promptreg.embedded_broker (new)": "promptreg.embedded_broker:Transport",
}


def connection(transport: str, folder: Path) -> Connection:
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "polling_interval": 0.0,
    }
    for name in ("queue", "processed", "control"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    return Connection("filesystem://", transport=transport, transport_options=options)


def produce(transport: str, folder: Path, producer: int, count: int) -> None:
    with connection(transport, folder) as conn:
        queue = conn.SimpleQueue("race")
        for n in range(count):
            queue.put({"id": f"{producer}-{n}", "pad": "x" * 900})  # about the size of a Celery task message
        queue.close()


def consume(transport: str, folder: Path, expected: int, produced, result) -> None:
    seen: dict[str, int] = {}
    unreadable = 0
    with connection(transport, folder) as conn:
        queue = conn.SimpleQueue("race")
        while len(seen) < expected:
            try:
                message = queue.get(block=True, timeout=2)
            except Empty:
                if produced.is_set():
                    break  # everything was published and nothing came for 2 s: the rest is lost
                continue
            except json.JSONDecodeError:
                unreadable += 1  # a Celery worker stops here
                continue
            seen[message.payload["id"]] = seen.get(message.payload["id"], 0) + 1
            message.ack()
        queue.close()
    result.put({"received": len(seen), "duplicates": sum(c - 1 for c in seen.values()), "unreadable": unreadable})


def run(transport: str, producers: int, messages: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result, produced = multiprocessing.Queue(), multiprocessing.Event()
        started = time.monotonic()
        consumer = multiprocessing.Process(
            target=consume, args=(transport, folder, producers * messages, produced, result)
        )
        consumer.start()
        workers = [
            multiprocessing.Process(target=produce, args=(transport, folder, p, messages)) for p in range(producers)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        produced.set()
        counts = result.get(timeout=150)
        consumer.join()
        counts["lost"] = producers * messages - counts["received"]
        counts["seconds"] = round(time.monotonic() - started, 1)
        return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--producers", type=int, default=4)
    parser.add_argument("--messages", type=int, default=2000, help="per producer")
    args = parser.parse_args()
    print(f"{args.producers} producers x {args.messages} messages, one consumer")
    print("| transport | unreadable (worker crashes) | lost | duplicated | seconds |")
    print("|---|---|---|---|---|")
    for label, transport in TRANSPORTS.items():
        c = run(transport, args.producers, args.messages)
        print(f"| {label} | {c['unreadable']} | {c['lost']} | {c['duplicates']} | {c['seconds']} |")


if __name__ == "__main__":
    main()
