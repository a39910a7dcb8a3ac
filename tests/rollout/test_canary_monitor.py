"""Canary monitors: a canary on a monitored label is watched with the label's rules, against its
concurrent control, and concluded (all traffic back on the control) when it trips."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command

from experiments.models import Experiment, ExperimentState
from experiments.services import experiment_conclude, experiment_stop
from promptreg.exceptions import InvalidInput
from promptreg.models import LabelMove
from rollout.models import (
    Alert,
    AlertKind,
    CheckAction,
    Monitor,
    MonitorCheck,
    MonitorState,
    Outcome,
    RollbackIncident,
    Severity,
)
from rollout.monitoring import claim_due, run_check
from rollout.services import monitor_configure
from tests.rollout.monitor_story import (
    CLI,
    NAME,
    activate,
    add_scores,
    canary,
    canary_story,
    chart_markers,
    live,
    monitor,
    noisy,
    publish,
)


@pytest.fixture(autouse=True)
def _ungated(ungated):
    pass


def canary_monitor(experiment: Experiment) -> Monitor:
    return Monitor.objects.get(experiment=experiment)


def scores_during(
    experiment: Experiment, *, control: float, treatment: float, seconds: int = 60, seed: int = 10
) -> None:
    """Concurrent traffic: 19 control scores for each treatment score, as a 5% canary sees it."""
    end = experiment.started_at + timedelta(seconds=seconds)
    add_scores(experiment.control_version, noisy(control, 19 * seconds, seed=seed), end=end, spacing=1 / 19)
    add_scores(experiment.treatment_version, noisy(treatment, seconds, seed=seed + 1), end=end)


def test_a_canary_on_a_monitored_label_gets_a_monitor_with_the_label_rules(db):
    v1, v2, label_monitor, experiment = canary_story()
    watcher = canary_monitor(experiment)
    assert (watcher.parent, watcher.prompt, watcher.label, watcher.watched_version) == (
        label_monitor,
        label_monitor.prompt,
        "production",
        v2,
    )
    assert watcher.config_dict() == label_monitor.config_dict()
    assert watcher.state == MonitorState.WAITING and watcher.id in claim_due()
    # the rules follow the label's monitor, and so does switching it off
    monitor_configure(name=NAME, actor=CLI, changes={"floor_threshold": 0.5, "interval_seconds": 30})
    watcher.refresh_from_db()
    assert (watcher.floor_threshold, watcher.interval_seconds) == (0.5, 30)
    monitor_configure(name=NAME, actor=CLI, changes={"enabled": False})
    watcher.refresh_from_db()
    assert (watcher.enabled, watcher.state) == (False, MonitorState.DISABLED)
    assert claim_due(experiment.started_at + timedelta(days=1)) == []
    assert Monitor.objects.of_label(label_monitor.prompt).get() == label_monitor


def test_a_canary_is_watched_once_its_label_has_a_monitor_and_not_before(db):
    publish(2)
    activate(1)
    experiment = canary(2)
    assert not Monitor.objects.exists()
    label_monitor = monitor()
    assert canary_monitor(experiment).parent == label_monitor
    assert Monitor.objects.count() == 2


def test_a_failing_canary_is_concluded_with_the_evidence_and_production_stays(
    db, api_as, django_capture_on_commit_callbacks
):
    v1, v2, label_monitor, experiment = canary_story()
    watcher = canary_monitor(experiment)
    scores_during(experiment, control=0.8, treatment=0.5)
    now = experiment.started_at + timedelta(seconds=61)
    first = run_check(watcher.id, now=now)
    assert (first.outcome, first.action, first.version) == (Outcome.FAILED, CheckAction.NONE, v2)
    assert Experiment.objects.get(pk=experiment.pk).state == ExperimentState.RUNNING
    with django_capture_on_commit_callbacks(execute=True):
        second = run_check(watcher.id, now=now + timedelta(seconds=60))
    assert (second.outcome, second.action) == (Outcome.FAILED, CheckAction.ROLLED_BACK)

    experiment.refresh_from_db()
    assert experiment.state == ExperimentState.CONCLUDED and experiment.shipped_move is None
    assert experiment.snapshots.count() == 1  # the analysis as it stood at the end
    for evidence in (
        "Automatic canary rollback",
        "canary v2",
        "5% of traffic",
        "failed 2 checks in a row",
        "floor: mean 0.49",
        "n=60",
        "Baseline: its control v1 from",
        "Welch p=",
        "the canary start",
    ):
        assert evidence in experiment.end_reason, evidence
    assert experiment.history.first().history_change_reason.startswith(
        "concluded by promptreg: Automatic canary rollback"
    )
    # production itself never moved, and every session gets v1 again
    assert live() == 1 and not LabelMove.objects.filter(is_rollback=True).exists()
    reader = api_as("read")
    for session in ("a", "b", "c", "d", "e", "f", "g", "h"):
        body = reader.get(f"/api/v1/prompts/{NAME}", {"session_id": session}).json()
        assert (body["version"], body["experiment"]) == (1, None)

    incident = RollbackIncident.objects.get()
    assert (incident.experiment, incident.move, incident.from_version, incident.check_run) == (
        experiment,
        None,
        v2,
        second,
    )
    assert incident.succeeded
    assert (
        incident.headline
        == f"{NAME}: canary of v2 (canary #{experiment.pk}) rolled back automatically; all traffic on v1"
    )
    alert = Alert.objects.get()
    assert (alert.kind, alert.severity, alert.incident, alert.title) == (
        AlertKind.CANARY_ROLLED_BACK,
        Severity.WARNING,
        incident,
        incident.headline,
    )
    watcher.refresh_from_db()
    assert watcher.state == MonitorState.ROLLED_BACK
    markers = chart_markers(experiment.prompt)
    assert "canary v2 auto-rollback" in markers
    # the canary has ended: its monitor is done, the label's monitor goes on
    assert run_check(watcher.id, now=now + timedelta(seconds=120)) is None
    assert claim_due(now + timedelta(days=1)) == [label_monitor.id]


def test_the_baseline_is_the_control_in_the_same_window_not_its_past(db):
    v1, v2, label_monitor, experiment = canary_story()
    monitor_configure(name=NAME, actor=CLI, changes={"floor_threshold": 0.3})  # only the relative rule can fail
    watcher = canary_monitor(experiment)
    # v1's week before the canary averaged 0.8; during the canary all traffic is worse (a bad hour upstream)
    scores_during(experiment, control=0.65, treatment=0.65, seconds=120)
    check = run_check(watcher.id, now=experiment.started_at + timedelta(seconds=121))
    assert check.outcome == Outcome.SUCCESSFUL, check.summary
    rules = {r["rule"]: r for r in check.evidence["rules"]}
    assert abs(rules["relative"]["evidence"]["baseline_mean"] - 0.65) < 0.01
    assert check.evidence["baseline_window"][0] == experiment.started_at.isoformat()
    assert check.evidence["canary"] == {"experiment": experiment.pk, "traffic_fraction": 0.05}
    # then the canary drops 10% below that same control: over all its scores since the start
    # (the relative rule of a canary reads them all), it fails while the floor still holds
    later = experiment.started_at + timedelta(minutes=20)
    add_scores(v1, noisy(0.65, 19 * 300, seed=20), end=later, spacing=1 / 19)
    add_scores(v2, noisy(0.585, 300, seed=21), end=later)
    check = run_check(watcher.id, now=later + timedelta(seconds=1))
    rules = {r["rule"]: r for r in check.evidence["rules"]}
    assert (rules["floor"]["outcome"], rules["relative"]["outcome"]) == (Outcome.SUCCESSFUL, Outcome.FAILED), (
        check.summary
    )
    assert (
        rules["relative"]["evidence"]["n"] == 420
        and check.evidence["relative_window_start"] == experiment.started_at.isoformat()
    )


def test_a_healthy_canary_keeps_running(db):
    v1, v2, label_monitor, experiment = canary_story(consecutive_failures=1)
    watcher = canary_monitor(experiment)
    scores_during(experiment, control=0.8, treatment=0.82, seconds=120)
    check = run_check(watcher.id, now=experiment.started_at + timedelta(seconds=121))
    assert (check.outcome, check.action) == (Outcome.SUCCESSFUL, CheckAction.NONE), check.summary
    assert check.summary.startswith("canary v2 successful")
    assert Experiment.objects.get(pk=experiment.pk).state == ExperimentState.RUNNING
    assert not RollbackIncident.objects.exists()


def test_a_canary_a_person_ended_is_not_judged_again(db, capsys):
    v1, v2, label_monitor, experiment = canary_story(consecutive_failures=1)
    watcher = canary_monitor(experiment)
    scores_during(experiment, control=0.8, treatment=0.4)
    experiment_stop(experiment_id=experiment.pk, actor=CLI, reason="kill switch")
    assert run_check(watcher.id, now=experiment.started_at + timedelta(seconds=61)) is None
    assert watcher.checks.count() == 0 and claim_due(experiment.started_at + timedelta(days=1)) == [label_monitor.id]
    call_command("check_monitors")
    assert "canary" not in capsys.readouterr().out
    # a person concluding it later is their decision; the monitor records nothing
    experiment_conclude(experiment_id=experiment.pk, actor=CLI, reason="done")
    assert not RollbackIncident.objects.exists() and not Alert.objects.exists()


def test_check_monitors_command_checks_running_canaries(db, capsys):
    v1, v2, label_monitor, experiment = canary_story()
    call_command("check_monitors")
    out = capsys.readouterr().out
    assert f"{NAME}@production: inconclusive" in out
    assert f"{NAME}@production canary #{experiment.pk}: inconclusive" in out
    assert canary_monitor(experiment).checks.count() == 1


def test_the_monitor_api_lists_the_running_canaries(db, api_as):
    v1, v2, label_monitor, experiment = canary_story()
    body = api_as("read").get(f"/api/v1/prompts/{NAME}/monitor").json()
    assert body["canary"] is None
    (watched,) = body["canaries"]
    assert watched["canary"] == {
        "experiment": experiment.pk,
        "state": "running",
        "version": 2,
        "control_version": 1,
        "traffic_fraction": 0.05,
    }
    assert watched["floor"] == body["floor"] and watched["watched_version"] == 2 and "canaries" not in watched
    experiment_stop(experiment_id=experiment.pk, actor=CLI, reason="stop")
    assert api_as("read").get(f"/api/v1/prompts/{NAME}/monitor").json()["canaries"] == []


def test_admin_pages_show_canary_monitors_and_their_incidents(client, django_user_model):
    v1, v2, label_monitor, experiment = canary_story(consecutive_failures=1)
    watcher = canary_monitor(experiment)
    scores_during(experiment, control=0.8, treatment=0.4)
    run_check(watcher.id, now=experiment.started_at + timedelta(seconds=61))
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "x"))
    for model, obj in (
        (Monitor, watcher),
        (MonitorCheck, watcher.checks.get()),
        (RollbackIncident, RollbackIncident.objects.get()),
        (Alert, Alert.objects.get()),
    ):
        meta = model._meta
        changelist = client.get(f"/admin/{meta.app_label}/{meta.model_name}/")
        assert changelist.status_code == 200, meta.model_name
        assert client.get(f"/admin/{meta.app_label}/{meta.model_name}/{obj.pk}/change/").status_code == 200, (
            meta.model_name
        )
    assert f"canary #{experiment.pk}" in client.get("/admin/rollout/monitor/").content.decode()
    assert client.get(f"/admin/rollout/monitor/{watcher.pk}/history/").status_code == 200


def test_a_canary_too_small_to_judge_pages_a_human_once_saying_so(db):
    v1, v2, label_monitor, experiment = canary_story()
    monitor_configure(name=NAME, actor=CLI, changes={"inconclusive_before_page": 2})
    watcher = canary_monitor(experiment)
    for minute in (1, 2, 3):
        run_check(watcher.id, now=experiment.started_at + timedelta(minutes=minute))
    alert = Alert.objects.get()
    assert (alert.kind, alert.monitor) == (AlertKind.INCONCLUSIVE, watcher)
    assert f"{NAME}@production canary #{experiment.pk}: monitor has been unable to judge for 2 checks" == alert.title


def test_a_canary_rollback_that_is_refused_is_a_critical_incident_and_the_canary_runs_on(db, monkeypatch):
    v1, v2, label_monitor, experiment = canary_story(consecutive_failures=1)
    watcher = canary_monitor(experiment)
    scores_during(experiment, control=0.8, treatment=0.4)

    def refuse(**kwargs):
        raise InvalidInput("the experiments service said no", code="refused")

    monkeypatch.setattr("rollout.monitoring.experiment_conclude", refuse)
    check = run_check(watcher.id, now=experiment.started_at + timedelta(seconds=61))
    assert check.action == CheckAction.ROLLBACK_FAILED
    assert Experiment.objects.get(pk=experiment.pk).state == ExperimentState.RUNNING
    incident = RollbackIncident.objects.get()
    assert not incident.succeeded and incident.experiment == experiment
    assert (
        incident.headline
        == f"{NAME}: canary of v2 (canary #{experiment.pk}): automatic rollback FAILED — the experiments service said "
        f"no"
    )
    alert = Alert.objects.get()
    assert (alert.kind, alert.severity) == (
        AlertKind.ROLLBACK_FAILED,
        Severity.CRITICAL,
    ) and "canary v2 FAILED" in alert.title
    watcher.refresh_from_db()
    assert watcher.state == MonitorState.NEEDS_HUMAN
