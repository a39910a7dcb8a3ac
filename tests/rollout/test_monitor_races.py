"""Exactly once: concurrent checks, and a human pressing "Roll back" (or promoting a canary) during an automatic
rollback."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection

from experiments.models import Experiment, ExperimentState
from experiments.services import experiment_ship
from promptreg.exceptions import Conflict, InvalidInput
from promptreg.models import LabelMove, MoveVia
from promptreg.services import Actor, rollback
from rollout import monitoring
from rollout.models import CheckAction, Monitor, MonitorCheck, RollbackIncident
from rollout.monitoring import run_check
from tests.rollout.monitor_story import add_scores, canary_story, live, monitor, noisy, story

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def tripped_monitor():
    """v2 live with bad scores and one failed check already: the next failing check trips."""
    v1, v2 = story()
    m = monitor(consecutive_failures=2)
    t0 = LabelMove.objects.filter(to_version=v2).latest("id").created_at
    add_scores(v2, [0.3, 0.35, 0.25] * 15, end=t0 + timedelta(seconds=45))
    Monitor.objects.filter(pk=m.pk).update(failure_streak=1, watched_version=v2)
    return m, t0 + timedelta(seconds=46)


def in_threads(*targets, timeout=30):
    errors = []

    def wrap(target):
        def run():
            try:
                target()
            except Exception as exc:  # surfaced below
                errors.append(exc)
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread hung"
    assert not errors, errors


def test_five_concurrent_checks_on_a_tripped_monitor_roll_back_once(ungated):
    m, now = tripped_monitor()
    barrier = threading.Barrier(5, timeout=10)

    def check():
        barrier.wait()
        run_check(m.id, now=now)

    in_threads(*[check] * 5)
    assert live() == 1
    assert LabelMove.objects.filter(is_rollback=True).count() == 1
    assert RollbackIncident.objects.count() == 1
    actions = list(MonitorCheck.objects.values_list("action", flat=True))
    assert len(actions) == 5 and actions.count(CheckAction.ROLLED_BACK) == 1


def human_during_the_trip(monkeypatch, monitor_id: int, now, act) -> list[str]:
    """Run a check that, having judged and about to act, lets a person `act` first; returns what `act` said.

    On SQLite the check's write transaction holds the database, so the person waits for it instead.
    """
    judged, human_done = threading.Event(), threading.Event()
    real_reason = monitoring.rollback_reason
    said = []

    def reason_after_the_human(*args, **kwargs):
        judged.set()
        human_done.wait(timeout=3)
        return real_reason(*args, **kwargs)

    monkeypatch.setattr("rollout.monitoring.rollback_reason", reason_after_the_human)

    def human():
        assert judged.wait(timeout=10)
        try:
            said.append(act())
        finally:
            human_done.set()

    in_threads(lambda: run_check(monitor_id, now=now), human)
    return said


def test_a_manual_rollback_during_an_automatic_one_makes_one_rollback(ungated, deployer, monkeypatch):
    m, now = tripped_monitor()

    def roll_back():
        try:
            rollback(
                name="support-system",
                actor=Actor(via=MoveVia.BUTTON, user=deployer),
                reason="saw it on the dashboard",
                expected_current=2,
            )
            return "rolled back"
        except Conflict:
            return "conflict"

    manual = human_during_the_trip(monkeypatch, m.id, now, roll_back)
    moves = list(LabelMove.objects.filter(is_rollback=True))
    assert len(moves) == 1 and live() == 1
    check = MonitorCheck.objects.get()
    if manual == ["rolled back"]:
        assert moves[0].via == MoveVia.BUTTON and check.action == CheckAction.ALREADY_HANDLED
        assert not RollbackIncident.objects.exists()
    else:  # SQLite: the check's write transaction holds the database until it commits
        assert connection.vendor == "sqlite"
        assert moves[0].via == MoveVia.AUTO_ROLLBACK and check.action == CheckAction.ROLLED_BACK
    if connection.vendor == "postgresql":
        assert manual == ["rolled back"]


def tripped_canary():
    """A canary of v2 with bad scores and one failed check already: the next failing check concludes it."""
    v1, v2, _, experiment = canary_story()
    watcher = Monitor.objects.get(experiment=experiment)
    end = experiment.started_at + timedelta(seconds=45)
    add_scores(v1, noisy(0.8, 19 * 45, seed=7), end=end, spacing=1 / 19)
    add_scores(v2, [0.3, 0.35, 0.25] * 15, end=end)
    Monitor.objects.filter(pk=watcher.pk).update(failure_streak=1)
    return watcher, experiment, end + timedelta(seconds=1)


def test_five_concurrent_checks_on_a_tripped_canary_conclude_it_once(ungated):
    watcher, experiment, now = tripped_canary()
    barrier = threading.Barrier(5, timeout=10)

    def check():
        barrier.wait()
        run_check(watcher.id, now=now)

    in_threads(*[check] * 5)
    assert Experiment.objects.get(pk=experiment.pk).state == ExperimentState.CONCLUDED
    assert experiment.history.filter(state=ExperimentState.CONCLUDED).count() == 1
    assert RollbackIncident.objects.get().experiment_id == experiment.pk
    actions = list(MonitorCheck.objects.values_list("action", flat=True))
    # the checks that waited for the first one find the canary ended and record nothing
    assert actions == [CheckAction.ROLLED_BACK]
    assert live() == 1 and not LabelMove.objects.filter(is_rollback=True).exists()


def test_a_person_promoting_a_canary_while_its_monitor_concludes_it_makes_one_decision(
    ungated, admin_user, monkeypatch
):
    watcher, experiment, now = tripped_canary()

    def promote():
        # The verdict does not allow a ship (the canary is failing): only an admin's override promotes it.
        try:
            experiment_ship(
                experiment_id=experiment.pk,
                actor=Actor(via=MoveVia.BUTTON, user=admin_user),
                reason="looks fine to me",
                override=True,
            )
            return "promoted"
        except InvalidInput:
            return "refused"

    human = human_during_the_trip(monkeypatch, watcher.id, now, promote)
    experiment.refresh_from_db()
    assert experiment.state == ExperimentState.CONCLUDED
    assert experiment.history.filter(state=ExperimentState.CONCLUDED).count() == 1
    check = MonitorCheck.objects.get()
    if human == ["promoted"]:
        assert experiment.shipped_move is not None and live() == 2
        assert check.action == CheckAction.ALREADY_HANDLED and not RollbackIncident.objects.exists()
    else:  # SQLite: the check's write transaction holds the database until it commits
        assert connection.vendor == "sqlite"
        assert experiment.shipped_move is None and live() == 1 and check.action == CheckAction.ROLLED_BACK
    if connection.vendor == "postgresql":
        assert human == ["promoted"]


def test_a_person_promoting_a_canary_its_monitor_is_concluding_waits_and_is_refused(ungated, deployer, monkeypatch):
    """The other order: the check has concluded the canary and still holds its locks when the person
    clicks. Both take the prompt before the experiment: the person waits, then finds the canary concluded."""
    watcher, experiment, now = tripped_canary()
    concluded, clicked = threading.Event(), threading.Event()
    real_conclude = monitoring.experiment_conclude
    human = []

    def conclude_then_hold(**kwargs):
        concluded_experiment = real_conclude(**kwargs)
        concluded.set()
        clicked.wait(timeout=5)
        time.sleep(0.5)  # the promotion is now waiting on the check's locks; the incident is written next
        return concluded_experiment

    monkeypatch.setattr("rollout.monitoring.experiment_conclude", conclude_then_hold)

    def promote():
        assert concluded.wait(timeout=10)
        clicked.set()
        try:
            experiment_ship(
                experiment_id=experiment.pk, actor=Actor(via=MoveVia.BUTTON, user=deployer), reason="looks fine to me"
            )
            human.append("promoted")
        except InvalidInput as exc:
            human.append(exc.message)

    in_threads(lambda: run_check(watcher.id, now=now), promote)
    assert len(human) == 1 and "is concluded" in human[0]
    experiment.refresh_from_db()
    assert (experiment.state, experiment.shipped_move, live()) == (ExperimentState.CONCLUDED, None, 1)
    assert MonitorCheck.objects.get().action == CheckAction.ROLLED_BACK
