"""Concurrent writers against the real database (PostgreSQL or the SQLite file): no gaps,
no duplicates, one production version, a move log that adds up."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from promptreg.exceptions import InvalidInput
from promptreg.models import PRODUCTION, Label, LabelMove, MoveVia, PromptVersion, ReviewPolicy
from promptreg.services import Actor, label_move, version_publish

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
CLI = Actor(via=MoveVia.CLI)


def run_together(n: int, work: Callable[[int], object]) -> tuple[list, list[BaseException]]:
    """Start n threads at the same moment; collect results and errors (each thread has its own connection)."""
    barrier = threading.Barrier(n)
    results, errors = [], []

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results.append(work(i))
        except BaseException as exc:  # noqa: BLE001  (reported by the test)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results, errors


def test_twenty_concurrent_publishes_number_versions_1_to_20():
    def publish(i: int) -> int:
        return version_publish(
            name="race-system", kind="text", body=f"body {i}", commit_message=f"by thread {i}", actor=CLI
        ).number

    numbers, errors = run_together(20, publish)
    assert errors == []
    assert sorted(numbers) == list(range(1, 21))
    stored = PromptVersion.objects.filter(prompt__name="race-system")
    assert sorted(stored.values_list("number", flat=True)) == list(range(1, 21))
    assert sorted(stored.values_list("body", flat=True)) == sorted(f"body {i}" for i in range(20))


def test_ten_concurrent_label_moves_leave_one_production_and_a_history_that_adds_up():
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    for i in range(10):
        version_publish(name="race-system", kind="text", body=f"v{i + 1}", commit_message="m", actor=CLI)

    def move(i: int) -> int:
        return label_move(
            name="race-system", label=PRODUCTION, version=i + 1, actor=CLI, reason=f"thread {i}"
        ).to_version.number

    moved, errors = run_together(10, move)
    # Every move succeeds (each targets a different version), serialised on the prompt row.
    assert errors == [] and sorted(moved) == list(range(1, 11))
    labels = Label.objects.filter(prompt__name="race-system", name=PRODUCTION)
    assert labels.count() == 1
    moves = list(LabelMove.objects.filter(prompt__name="race-system", label=PRODUCTION).order_by("id"))
    assert len(moves) == 10
    assert moves[0].from_version is None
    for before, after in zip(moves, moves[1:], strict=False):
        assert after.from_version_id == before.to_version_id  # a chain: nobody overwrote a move unseen
    assert moves[-1].to_version_id == labels.get().version_id


def test_concurrent_moves_to_the_same_version_succeed_once():
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    version_publish(name="race-system", kind="text", body="only", commit_message="m", actor=CLI)

    def move(i: int):
        return label_move(name="race-system", label=PRODUCTION, version=1, actor=CLI, reason=f"thread {i}")

    moved, errors = run_together(10, move)
    assert len(moved) == 1
    assert len(errors) == 9 and all(isinstance(e, InvalidInput) and e.code == "no_change" for e in errors)
    assert LabelMove.objects.count() == 1
