"""One check of a monitor against stored scores: outcomes, automatic rollback, holds, pages, errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from promptreg.models import PRODUCTION, LabelMove, MoveVia
from promptreg.services import Actor, prompt_retire, rollback, version_publish
from rollout.models import (
    Alert,
    AlertKind,
    CheckAction,
    MonitorCheck,
    MonitorState,
    Outcome,
    RollbackIncident,
    Severity,
)
from rollout.monitoring import run_check
from tests.rollout.monitor_story import CLI, NAME, activate, add_scores, live, monitor, noisy, publish, story


def activated_at(version):
    return LabelMove.objects.filter(to_version=version, label=PRODUCTION).latest("id").created_at


@pytest.fixture(autouse=True)
def _ungated(ungated):
    pass


def test_bad_version_is_rolled_back_after_two_failed_checks_with_the_evidence(db):
    v1, v2 = story()
    m = monitor()
    t0 = activated_at(v2)
    add_scores(v2, noisy(0.5, 60, seed=2), end=t0 + timedelta(seconds=60))
    first = run_check(m.id, now=t0 + timedelta(seconds=61))
    assert (first.outcome, first.action, live()) == (Outcome.FAILED, CheckAction.NONE, 2)
    second = run_check(m.id, now=t0 + timedelta(seconds=121))
    assert (second.outcome, second.action) == (Outcome.FAILED, CheckAction.ROLLED_BACK)
    assert live() == 1
    move = LabelMove.objects.filter(is_rollback=True).get()
    assert (move.via, move.from_version, move.to_version) == (MoveVia.AUTO_ROLLBACK, v2, v1)
    for evidence in (
        "mean 0.5",
        "n=60",
        "baseline 0.7",
        "n=300",
        "Baseline: v1 from",
        "p=",
        "failed 2 checks in a row",
        "since",
    ):
        assert evidence in move.reason, evidence
    incident = RollbackIncident.objects.get()
    assert (incident.move, incident.check_run, incident.acknowledged_at) == (move, second, None)
    alert = Alert.objects.get()
    assert (alert.kind, alert.severity, alert.incident) == (AlertKind.ROLLBACK, Severity.WARNING, incident)
    m.refresh_from_db()
    assert (m.state, m.watched_version, m.failure_streak) == (MonitorState.ROLLED_BACK, v1, 0)


def test_good_version_passes_and_scores_before_activation_do_not_count(db):
    v1, v2 = story()
    m = monitor()
    t0 = activated_at(v2)
    # v2's scores from before its activation (say, from a canary) are not its production record.
    add_scores(v2, [0.1] * 50, end=t0 - timedelta(seconds=5))
    check = run_check(m.id, now=t0 + timedelta(seconds=30))
    assert check.outcome == Outcome.INCONCLUSIVE
    add_scores(v2, noisy(0.8, 100, seed=3), end=t0 + timedelta(seconds=100))
    check = run_check(m.id, now=t0 + timedelta(seconds=101))
    assert check.outcome == Outcome.SUCCESSFUL, check.summary
    assert live() == 2 and not LabelMove.objects.filter(is_rollback=True).exists()


def test_relative_rule_catches_a_drop_above_the_floor(db):
    v1, v2 = story()
    m = monitor(floor_threshold=0.5)  # the floor is far below: only the relative rule can see a 10% drop
    t0 = activated_at(v2)
    add_scores(v2, noisy(0.72, 200, seed=4), end=t0 + timedelta(seconds=200))
    check = run_check(m.id, now=t0 + timedelta(seconds=201))
    rules = {r["rule"]: r for r in check.evidence["rules"]}
    assert rules["floor"]["outcome"] == Outcome.SUCCESSFUL
    assert rules["relative"]["outcome"] == Outcome.FAILED
    assert rules["relative"]["evidence"]["p_value"] < 0.01
    assert check.outcome == Outcome.FAILED


def test_latency_monitor_fails_when_latency_rises(db):
    v1, v2 = publish(2)
    activate(1)
    add_scores(v1, noisy(1000, 300, seed=5, sd=100, bounded=False), spacing=10, metric="latency_ms")
    activate(2)
    m = monitor(metric="latency_ms", floor_threshold=1500)
    t0 = activated_at(v2)
    add_scores(
        v2, noisy(1300, 100, seed=6, sd=100, bounded=False), end=t0 + timedelta(seconds=100), metric="latency_ms"
    )
    check = run_check(m.id, now=t0 + timedelta(seconds=101))
    rules = {r["rule"]: r["outcome"] for r in check.evidence["rules"]}
    assert rules == {"floor": Outcome.SUCCESSFUL, "relative": Outcome.FAILED}


def test_restored_version_is_not_rolled_back_further_and_a_human_is_paged(db):
    v1, v2 = publish(2)
    activate(1)
    activate(2)
    m = monitor(consecutive_failures=1, relative_enabled=False)
    t0 = activated_at(v2)
    add_scores(v2, [0.3] * 30, end=t0 + timedelta(seconds=30))
    assert run_check(m.id, now=t0 + timedelta(seconds=31)).action == CheckAction.ROLLED_BACK
    assert live() == 1
    t1 = activated_at(v1)
    add_scores(v1, [0.3] * 30, end=t1 + timedelta(seconds=30))
    check = run_check(m.id, now=t1 + timedelta(seconds=31))
    assert (check.outcome, check.action) == (Outcome.FAILED, CheckAction.ROLLBACK_HELD)
    assert live() == 1 and LabelMove.objects.filter(is_rollback=True).count() == 1
    held = Alert.objects.get(kind=AlertKind.ROLLBACK_HELD)
    assert held.severity == Severity.CRITICAL and "restored by an automatic rollback" in held.text
    # further failing checks do not alert again while waiting for the human
    add_scores(v1, [0.3] * 30, end=t1 + timedelta(seconds=60))
    run_check(m.id, now=t1 + timedelta(seconds=61))
    assert Alert.objects.filter(kind=AlertKind.ROLLBACK_HELD).count() == 1


def test_a_human_reactivation_after_the_rollback_stands(db, deployer):
    v1, v2 = story()
    m = monitor(consecutive_failures=1, cooldown_minutes=0)
    t0 = activated_at(v2)
    add_scores(v2, [0.3] * 40, end=t0 + timedelta(seconds=40))
    assert run_check(m.id, now=t0 + timedelta(seconds=41)).action == CheckAction.ROLLED_BACK
    activate(2, actor=Actor(via=MoveVia.BUTTON, user=deployer))  # the human overrides the monitor
    t1 = activated_at(v2)
    add_scores(v2, [0.3] * 40, end=t1 + timedelta(seconds=40))
    check = run_check(m.id, now=t1 + timedelta(seconds=41))
    assert check.action == CheckAction.ROLLBACK_HELD and live() == 2
    assert "re-activated v2" in Alert.objects.get(kind=AlertKind.ROLLBACK_HELD).text


def test_cooldown_holds_a_second_automatic_rollback(db):
    v1, v2, v3 = publish(3)
    activate(1)
    activate(2)
    m = monitor(consecutive_failures=1, relative_enabled=False, cooldown_minutes=30)
    t0 = activated_at(v2)
    add_scores(v2, [0.3] * 30, end=t0 + timedelta(seconds=30))
    run_check(m.id, now=t0 + timedelta(seconds=31))
    activate(3)  # a fix, shipped minutes later, also bad
    t1 = activated_at(v3)
    add_scores(v3, [0.3] * 30, end=t1 + timedelta(seconds=30))
    check = run_check(m.id, now=t1 + timedelta(seconds=31))
    assert (
        check.action == CheckAction.ROLLBACK_HELD
        and "cooldown" in check.monitor.alerts.get(kind=AlertKind.ROLLBACK_HELD).text
    )
    assert live() == 3


def test_nothing_to_roll_back_to_is_a_critical_failed_rollback(db):
    (v1,) = publish(1)
    activate(1)
    m = monitor(consecutive_failures=1, relative_enabled=False)
    t0 = activated_at(v1)
    add_scores(v1, [0.2] * 30, end=t0 + timedelta(seconds=30))
    check = run_check(m.id, now=t0 + timedelta(seconds=31))
    assert check.action == CheckAction.ROLLBACK_FAILED
    incident = RollbackIncident.objects.get()
    assert incident.move is None and "no earlier live version" in incident.error
    assert Alert.objects.get().severity == Severity.CRITICAL
    m.refresh_from_db()
    assert m.state == MonitorState.NEEDS_HUMAN


def test_inconclusive_checks_page_a_human_once(db):
    story()
    m = monitor(inconclusive_before_page=3)
    actions = [run_check(m.id).action for _ in range(4)]
    assert actions == [CheckAction.NONE, CheckAction.NONE, CheckAction.PAGED, CheckAction.NONE]
    alert = Alert.objects.get()
    assert (alert.kind, alert.severity) == (AlertKind.INCONCLUSIVE, Severity.WARNING)


def test_a_check_that_cannot_run_is_stored_as_error(db, monkeypatch):
    story()
    m = monitor()

    def broken(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr("rollout.judgement.score_aggregate", broken)
    check = run_check(m.id)
    assert check.outcome == Outcome.ERROR and "database on fire" in check.summary
    assert MonitorCheck.objects.filter(outcome=Outcome.ERROR).count() == 1


def test_a_manual_rollback_resets_the_record(db, deployer):
    v1, v2 = story()
    m = monitor(consecutive_failures=2)
    t0 = activated_at(v2)
    add_scores(v2, [0.3] * 30, end=t0 + timedelta(seconds=30))
    run_check(m.id, now=t0 + timedelta(seconds=31))
    rollback(
        name="support-system", actor=Actor(via=MoveVia.BUTTON, user=deployer), reason="looks bad", expected_current=2
    )
    check = run_check(m.id, now=t0 + timedelta(seconds=91))
    assert check.version == v1 and check.action == CheckAction.NONE
    m.refresh_from_db()
    assert (m.watched_version, m.failure_streak) == (v1, 0)
    assert LabelMove.objects.filter(is_rollback=True).count() == 1


def test_check_monitors_command_checks_every_enabled_monitor(db, capsys):
    story()
    m = monitor()
    publish(1, name="billing-extraction")
    activate(1, name="billing-extraction")
    from rollout.services import monitor_configure
    from tests.rollout.monitor_story import CLI

    off = monitor_configure(name="billing-extraction", actor=CLI, changes={"floor_threshold": 0.5, "enabled": False})
    call_command("check_monitors")
    out = capsys.readouterr().out
    assert "support-system@production: inconclusive" in out
    assert m.checks.count() == 1 and off.checks.count() == 0


def test_a_rollback_refused_because_its_target_no_longer_resolves_pages_a_human(db):
    """v1 included a prompt that has been retired since: rolling back to it would break serving, so the rollback is
    refused, and that refusal is a failed automatic rollback (a page), not 'someone already acted'."""
    publish(1, name="company-voice")
    activate(1, name="company-voice")
    v1 = version_publish(
        name=NAME,
        kind="text",
        body="@@@langfusePrompt:name=company-voice|label=production@@@ Hello {{ name }}",
        commit_message="with the house voice",
        actor=CLI,
    )
    add_scores(v1, noisy(0.8, 300, seed=1), spacing=12, end=timezone.now() - timedelta(seconds=1))
    activate(1)
    (v2,) = publish(1)
    activate(2)
    prompt_retire(name="company-voice", actor=CLI, reason="merged into the system prompt")
    m = monitor(consecutive_failures=1, relative_enabled=False)
    t0 = activated_at(v2)
    add_scores(v2, [0.2] * 30, end=t0 + timedelta(seconds=30))
    check = run_check(m.id, now=t0 + timedelta(seconds=31))
    assert check.action == CheckAction.ROLLBACK_FAILED and live() == 2
    assert "retired" in RollbackIncident.objects.get().error
    assert Alert.objects.get().severity == Severity.CRITICAL
