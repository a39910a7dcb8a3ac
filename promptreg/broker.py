"""Queueing background work without letting a slow or stalled broker hold the caller.

A web request that queues a task (an evaluation run, an alert delivery) publishes
it after commit through `enqueue_on_commit`. The publish runs on a small pool of
its own and the caller waits at most `BROKER_PUBLISH_TIMEOUT` seconds (2 s) for
it, whatever the transport (Redis, the embedded broker). When the broker fails or
is slow, the row keeps `enqueued_at` empty and stays in its queued state; beat's
`requeue` sweep publishes it again once the broker answers. Tasks are idempotent
(they claim their row with a conditional UPDATE), so a publish that lands late,
after the sweep also published it, does nothing twice.

While one publish has been waiting longer than `STALL_SECONDS`, or for
`RETRY_AFTER` seconds after one failed, other callers do not wait on the broker:
during a stall only the oldest publish waits out the deadline, those beside it
give up within `STALL_SECONDS`, and later ones return at once, so the server
threads (and the fetch path sharing them) are not held up.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from datetime import timedelta

from celery import Task
from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

log = logging.getLogger(__name__)

STALL_SECONDS = 0.5  # a healthy publish takes milliseconds
POLL_SECONDS = 0.05
RETRY_AFTER = 5.0  # seconds without waiting on the broker after a failed publish
REQUEUE_GRACE = timedelta(seconds=10)  # leave the after-commit publish time to happen before the sweep redoes it

_lock = threading.Lock()
_in_flight: dict[int, float] = {}  # publish ticket → when it started
_tickets = itertools.count()
_skip_until = 0.0


def _broker_suspect(now: float, ticket: int | None = None) -> str | None:
    """Why not to wait on the broker now (None: go ahead); `ticket` is the caller's own publish, if under way."""
    if now < _skip_until:
        return "a publish failed moments ago"
    earlier = [started for other, started in _in_flight.items() if ticket is None or other < ticket]
    if any(now - started > STALL_SECONDS for started in earlier):
        return f"an earlier publish has waited more than {STALL_SECONDS:g} s"
    return None


class _Publish(threading.Thread):
    """One publish on a daemon thread: one stuck on a stalled broker never keeps the process from exiting
    (as an executor's threads would), and lands late, harmlessly, if the broker wakes up."""

    def __init__(self, task: Task, args: tuple):
        super().__init__(daemon=True, name=f"publish-{task.name}")
        self.task, self.args = task, args
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.task.apply_async(self.args)
        except BaseException as exc:  # reported to the waiting caller
            self.error = exc
        finally:
            self.done.set()


def publish(task: Task, *args) -> bool:
    """Queue `task(*args)`; True if the broker took it within the deadline, else False (logged)."""
    global _skip_until
    if task.app.conf.task_always_eager:
        task.apply_async(args)
        return True
    now = time.monotonic()
    with _lock:
        suspect = _broker_suspect(now)
        if suspect is None:
            ticket = next(_tickets)
            _in_flight[ticket] = now
    if suspect is not None:
        log.warning("not queueing %s%r now (%s); beat will queue it", task.name, args, suspect)
        return False
    attempt = _Publish(task, args)
    attempt.start()
    deadline = now + settings.BROKER_PUBLISH_TIMEOUT
    try:
        # Wait in short steps: an earlier publish that stalls ends this wait too.
        while not attempt.done.wait(min(POLL_SECONDS, max(0.0, deadline - time.monotonic()))):
            with _lock:
                suspect = _broker_suspect(time.monotonic(), ticket)
            if suspect is not None or time.monotonic() >= deadline:
                raise TimeoutError(suspect or f"no answer within {settings.BROKER_PUBLISH_TIMEOUT:g} s")
        if attempt.error is not None:
            raise attempt.error
        return True
    except Exception as exc:  # the deadline, a stalled earlier publish, or the transport's own error
        with _lock:
            _skip_until = time.monotonic() + RETRY_AFTER
        log.warning("could not queue %s%r (%r); beat will queue it", task.name, args, exc)
        return False
    finally:
        with _lock:
            _in_flight.pop(ticket, None)


def enqueue_on_commit(task: Task, row: models.Model) -> None:
    """After commit, publish `task(row.pk)` and record `row.enqueued_at`; if the broker does not take it,
    the row waits, unmarked, for `requeue`."""

    def send() -> None:
        if publish(task, row.pk):
            type(row)._default_manager.filter(pk=row.pk, enqueued_at__isnull=True).update(enqueued_at=timezone.now())

    transaction.on_commit(send)


def requeue(waiting: models.QuerySet, task: Task, *, created: str = "created_at") -> list[int]:
    """Beat's sweep: publish `task(pk)` for the rows of `waiting` never handed to the broker (older than a grace
    period, so an after-commit publish under way is not doubled); returns the ids it published."""
    due = waiting.filter(enqueued_at__isnull=True, **{f"{created}__lt": timezone.now() - REQUEUE_GRACE})
    published = []
    for pk in due.order_by("pk").values_list("pk", flat=True)[:500]:
        if not publish(task, pk):
            break  # the broker is still down: the next sweep tries again
        waiting.model.objects.filter(pk=pk).update(enqueued_at=timezone.now())
        published.append(pk)
    return published
