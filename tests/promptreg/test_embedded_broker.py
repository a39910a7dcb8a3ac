"""The embedded broker (promptreg/embedded_broker.py): no half-written reads, nothing lost when a worker dies."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from queue import Empty

import pytest
from django.conf import settings
from kombu import Connection

TRANSPORT = "promptreg.embedded_broker:Transport"


def connection(folder: Path) -> Connection:
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
        "polling_interval": 0.0,
    }
    (folder / "queue").mkdir(parents=True, exist_ok=True)
    return Connection("filesystem://", transport=TRANSPORT, transport_options=options)


def publish(folder: Path, prefix: str, count: int) -> None:
    with connection(folder) as conn:
        queue = conn.SimpleQueue("q")
        for n in range(count):
            queue.put({"id": f"{prefix}-{n}", "pad": "x" * 900})
        queue.close()


def drain(folder: Path, *, until: int, idle: float = 2.0) -> list[str]:
    """Receive and acknowledge until `until` messages arrived or none came for `idle` seconds."""
    got: list[str] = []
    with connection(folder) as conn:
        queue = conn.SimpleQueue("q")
        while len(got) < until:
            try:
                message = queue.get(block=True, timeout=idle)
            except Empty:
                break
            got.append(message.payload["id"])
            message.ack()
        queue.close()
    return got


def hold_without_ack(folder: Path, count: int, held) -> None:
    with connection(folder) as conn:
        queue = conn.SimpleQueue("q")
        for _ in range(count):
            queue.get(block=True, timeout=10)
        held.set()
        time.sleep(60)  # killed long before


def start_holder(folder: Path, count: int) -> multiprocessing.Process:
    """A consumer process that claims `count` messages and never acknowledges them."""
    held = multiprocessing.Event()
    holder = multiprocessing.Process(target=hold_without_ack, args=(folder, count, held))
    holder.start()
    assert held.wait(15)
    return holder


def test_the_settings_use_the_embedded_transport_without_redis():
    if settings.REDIS_URL:
        assert settings.CELERY_BROKER_URL.startswith("redis")
    else:
        from promptreg.celery import app

        with app.connection_for_write() as conn:
            assert type(conn.transport).__module__ == "promptreg.embedded_broker"


def test_concurrent_publishers_never_hand_a_consumer_a_partial_message(tmp_path):
    producers = [multiprocessing.Process(target=publish, args=(tmp_path, f"p{p}", 300)) for p in range(3)]
    for p in producers:
        p.start()
    got = drain(tmp_path, until=900, idle=5.0)  # raises JSONDecodeError on a half-written file
    for p in producers:
        p.join(timeout=30)
    assert len(got) == 900 and len(set(got)) == 900
    assert not list((tmp_path / "queue").iterdir())
    assert not list((tmp_path / "tmp").iterdir())
    # The consumer's claim folder and lock are gone after a clean close.
    assert not list((tmp_path / "unacked").iterdir())


def test_messages_held_by_a_killed_consumer_are_delivered_again_in_order(tmp_path):
    publish(tmp_path, "m", 5)
    holder = start_holder(tmp_path, 3)
    holder.kill()  # SIGKILL: no shutdown handler restores anything
    holder.join(timeout=10)
    assert sorted(p.name for p in (tmp_path / "unacked").iterdir() if p.is_dir())  # the dead consumer's claims
    assert drain(tmp_path, until=5) == [f"m-{n}" for n in range(5)]
    assert not list((tmp_path / "unacked").iterdir())


def test_a_live_consumers_claims_are_not_taken_from_it(tmp_path):
    publish(tmp_path, "m", 2)
    holder = start_holder(tmp_path, 1)
    try:
        assert drain(tmp_path, until=2, idle=1.0) == ["m-1"]
    finally:
        holder.kill()
        holder.join(timeout=10)


def test_an_unreadable_file_is_set_aside_and_the_queue_goes_on(tmp_path):
    (tmp_path / "queue").mkdir()
    (tmp_path / "queue" / f"{0:020d}_leftover.q.msg").write_bytes(b"")  # as kombu's own transport could leave it
    publish(tmp_path, "m", 1)
    assert drain(tmp_path, until=1) == ["m-0"]
    assert [p.name for p in (tmp_path / "bad").iterdir()] == [f"{0:020d}_leftover.q.msg"]


@pytest.mark.parametrize("requeue", [True, False])
def test_a_rejected_message_leaves_no_claim_behind(tmp_path, requeue):
    publish(tmp_path, "m", 1)
    with connection(tmp_path) as conn:
        queue = conn.SimpleQueue("q")
        queue.get(block=True, timeout=5).reject(requeue=requeue)
        mine = [p for p in (tmp_path / "unacked").iterdir() if p.is_dir()]
        assert len(mine) == 1 and not list(mine[0].iterdir())
        queue.close()
    assert len(list((tmp_path / "queue").iterdir())) == (1 if requeue else 0)
