"""Quality monitors: the check that judges (`rollout.judgement`), applies the rules (`rollout.rules`) and trips.

A production monitor's trip rolls the label back; a canary monitor's trip concludes the canary
(`experiment_conclude`), which sends all traffic back to the control; the label itself does not move.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from experiments.models import Direction, Experiment, ExperimentState
from experiments.services import experiment_conclude
from promptreg.exceptions import Conflict, RegistryError
from promptreg.models import LabelMove, MoveVia, Prompt, PromptVersion
from promptreg.services import Actor, rollback
from rollout import alerts
from rollout.judgement import Judgement, judge
from rollout.models import (
    AlertKind,
    CheckAction,
    Monitor,
    MonitorCheck,
    MonitorState,
    Outcome,
    RollbackIncident,
    Severity,
)
from rollout.rules import Streaks, advance

log = logging.getLogger(__name__)


AUTOMATIC = Actor(via=MoveVia.AUTO_ROLLBACK)


# What the rollback or the canary's conclusion answers when someone acted first: the check was handled.
ALREADY_MOVED = ("stale_expectation", "canary_not_running")


def rollback_reason(monitor: Monitor, judgement: Judgement, failures: int) -> str:
    """The rollback's reason, written from the check's evidence: what failed, on which scores, against what."""
    e, canary = judgement.evidence, judgement.evidence.get("canary")
    findings = "; ".join(rule["message"] for rule in e["rules"])
    what = (
        f"canary v{e['version']} (canary #{canary['experiment']}, {canary['traffic_fraction']:.0%} of traffic)"
        if canary
        else f"v{e['version']}"
    )
    baseline = ""
    if e["baseline_version"]:
        role = "its control " if canary else ""
        baseline = (
            f" Baseline: {role}v{e['baseline_version']} from {e['baseline_window'][0]} to {e['baseline_window'][1]}."
        )
    return (
        f"Automatic {'canary ' if canary else ''}rollback by the {monitor.metric} monitor "
        f"({Direction(monitor.spec.direction).label.lower()}): "
        f"{what} failed {failures} checks in a row. Last check at {e['checked_at']} on scores since "
        f"{e['active_since']} ({'the canary start' if canary else 'its activation'}). {findings}.{baseline}"
    )


def hold_reason(monitor: Monitor, judgement: Judgement, now: datetime) -> str | None:
    """Why an automatic rollback must not happen now, if it must not.

    - the current version is the one the monitor itself restored: going further back is a human's call;
    - a human re-activated a version after the monitor rolled it back: a deliberate override stands;
    - cooldown: the monitor rolled this prompt back less than `cooldown_minutes` ago (never flaps).

    A canary is never held: concluding it only sends its share of traffic back to
    the version production serves anyway, and a canary ends once.
    """
    if monitor.is_canary:
        return None
    activation, version = judgement.activation, judgement.version
    assert version is not None, "only a judged version trips"
    if activation is not None and activation.via == MoveVia.AUTO_ROLLBACK:
        return (
            f"v{version.number} was itself restored by an automatic rollback; rolling back further is a human's "
            f"decision"
        )
    if (
        activation is not None
        and monitor.incidents.filter(
            from_version=version, move__isnull=False, created_at__lt=activation.created_at
        ).exists()
    ):
        return (
            f"{activation.actor_name} re-activated v{version.number} after the monitor rolled it back; that "
            f"decision stands"
        )
    if monitor.in_cooldown(now):
        return (
            f"the monitor rolled back {monitor.prompt.name} less than {monitor.cooldown_minutes} minutes ago (cooldown)"
        )
    return None


def _trip(monitor: Monitor, judgement: Judgement, check: MonitorCheck, now: datetime) -> None:
    """Roll back, or say why not, and alert. Runs inside the check's transaction."""
    version = judgement.version
    assert version is not None, "only a judged version trips"
    held = hold_reason(monitor, judgement, now)
    if held:
        check.action = CheckAction.ROLLBACK_HELD
        monitor.state = MonitorState.NEEDS_HUMAN
        alerts.raise_alert(
            AlertKind.ROLLBACK_HELD,
            Severity.CRITICAL,
            f"{monitor.prompt.name}: v{version.number} is failing; not rolled back automatically",
            f"Not rolled back because {held}.\n\n{judgement.summary}",
            monitor=monitor,
        )
        return
    reason = rollback_reason(monitor, judgement, monitor.failure_streak)
    try:
        if monitor.experiment_id is not None:  # a canary's monitor
            canary_conclude(monitor.experiment_id, version, reason)
            move = None
        else:
            move = rollback(
                name=monitor.prompt.name,
                label=monitor.label,
                actor=AUTOMATIC,
                reason=reason,
                expected_current=version.number,
            )
    except RegistryError as exc:
        if isinstance(exc, Conflict) and exc.code in ALREADY_MOVED:
            # Someone (a human, another check) moved the label after we judged it: handled. Any other refusal (a
            # target whose includes no longer resolve, say) is a failed rollback that pages a human.
            check.action = CheckAction.ALREADY_HANDLED
            check.summary += f" ({exc.message})"
            return
        check.action = CheckAction.ROLLBACK_FAILED
        monitor.state = MonitorState.NEEDS_HUMAN
        check.save()
        incident = _incident(monitor, check, version, reason, error=exc.message)
        alerts.raise_alert(
            AlertKind.ROLLBACK_FAILED,
            Severity.CRITICAL,
            f"{monitor.prompt.name}: automatic rollback of {'canary ' if monitor.is_canary else ''}v{version.number} "
            f"FAILED",
            f"{exc.message}\n\n{reason}",
            monitor=monitor,
            incident=incident,
        )
        return
    check.action = CheckAction.ROLLED_BACK
    check.save()
    incident = _incident(monitor, check, version, reason, move=move)
    monitor.state = MonitorState.ROLLED_BACK
    monitor.failure_streak = monitor.inconclusive_streak = 0
    if move is None:
        kind, title = AlertKind.CANARY_ROLLED_BACK, incident.headline
    else:
        monitor.watched_version = move.to_version
        kind = AlertKind.ROLLBACK
        title = f"{monitor.prompt.name}: production rolled back from v{version.number} to v{move.to_version.number}"
    alerts.raise_alert(kind, Severity.WARNING, title, reason, monitor=monitor, incident=incident)


def _incident(
    monitor: Monitor,
    check: MonitorCheck,
    version: PromptVersion,
    reason: str,
    *,
    move: LabelMove | None = None,
    error: str = "",
) -> RollbackIncident:
    """The incident of a trip: the rollback's `move`, or the `error` that stopped it."""
    return RollbackIncident.objects.create(
        monitor=monitor,
        prompt=monitor.prompt,
        check_run=check,
        from_version=version,
        experiment_id=monitor.experiment_id,
        reason=reason,
        move=move,
        error=error,
    )


def canary_conclude(experiment_id: int, version: PromptVersion, reason: str) -> None:
    """Conclude the canary that was judged, keeping its control; a Conflict when it no longer runs
    (a human concluded, promoted or stopped it meanwhile: that decision stands).

    Locks in the order every writer takes them: the prompt, then the experiment (as a promotion
    does, and a production rollback takes the prompt after the monitor too)."""
    Prompt.objects.select_for_update(of=("self",)).filter(experiments__pk=experiment_id).first()
    experiment = Experiment.objects.select_for_update().get(pk=experiment_id)
    if experiment.state != ExperimentState.RUNNING or experiment.treatment_version_id != version.id:
        raise Conflict(f"canary #{experiment_id} is {experiment.state} already", code="canary_not_running")
    experiment_conclude(experiment_id=experiment_id, actor=AUTOMATIC, reason=reason)


_STATE_AFTER: dict[str, MonitorState] = {
    Outcome.SUCCESSFUL: MonitorState.HEALTHY,
    Outcome.FAILED: MonitorState.FAILING,
    Outcome.INCONCLUSIVE: MonitorState.WAITING,
    Outcome.ERROR: MonitorState.WAITING,
}


def run_check(monitor_id: int, *, now: datetime | None = None) -> MonitorCheck | None:
    """One check of one monitor: judge, record, and trip or page when the limits say so.

    Checks of one monitor serialise on its row, and the rollback names the
    version that was judged (`expected_current`): five concurrent checks, a
    second worker or a human pressing "Roll back" at the same moment produce
    one rollback; the others find the label moved and record "already handled".
    A canary monitor's conclusion is pinned the same way, to the canary that is
    still running. None (nothing checked) for the monitor of a canary that has ended.

    The row lock is FOR NO KEY UPDATE: it serialises checks without blocking the
    insert of a canary monitor that references this one (PostgreSQL's foreign-key
    check takes a KEY SHARE lock), so starting a canary never waits on a check.
    """
    now = now or timezone.now()
    with transaction.atomic():
        monitor = (
            Monitor.objects.select_for_update(of=("self",), no_key=True).select_related("prompt").get(pk=monitor_id)
        )
        if monitor.experiment_id is not None:  # a canary's monitor
            # read once the lock is held: a check that waited for another one sees the canary it concluded
            monitor.experiment = Experiment.objects.select_related("control_version", "treatment_version").get(
                pk=monitor.experiment_id
            )
            if monitor.experiment.state != ExperimentState.RUNNING:
                return None
        try:
            with transaction.atomic():
                judgement = judge(monitor, now)
        except Exception as exc:  # a check that cannot run is recorded, never lost
            log.exception("monitor %s: check failed", monitor_id)
            judgement = Judgement(None, None, Outcome.ERROR, f"error: {type(exc).__name__}: {exc}", {})
        version = judgement.version
        if version is not None and monitor.watched_version_id != version.id:
            # A different version is live: its record starts clean.
            monitor.watched_version = version
            monitor.failure_streak = monitor.inconclusive_streak = 0
            if monitor.state in (MonitorState.NEEDS_HUMAN, MonitorState.ROLLED_BACK):
                monitor.state = MonitorState.WAITING
        streaks, trip, page = advance(
            Streaks(monitor.failure_streak, monitor.inconclusive_streak),
            judgement.outcome,
            consecutive_failures=monitor.consecutive_failures,
            inconclusive_before_page=monitor.inconclusive_before_page,
        )
        escalated = monitor.state == MonitorState.NEEDS_HUMAN
        if not (escalated and judgement.outcome != Outcome.SUCCESSFUL):
            monitor.state = _STATE_AFTER[judgement.outcome]
        monitor.failure_streak, monitor.inconclusive_streak = streaks.failures, streaks.unsure
        check = MonitorCheck(
            monitor=monitor,
            version=version,
            created_at=now,
            outcome=judgement.outcome,
            summary=judgement.summary,
            evidence=judgement.evidence,
        )
        if trip and not escalated:
            _trip(monitor, judgement, check, now)
        elif trip:
            check.summary += " (already escalated; waiting for a human)"
        if page:
            check.action = CheckAction.PAGED
            alerts.raise_alert(
                AlertKind.INCONCLUSIVE,
                Severity.WARNING,
                f"{monitor.watches}: monitor has been unable to judge for {streaks.unsure} checks",
                f"The {monitor.metric} monitor of {monitor.watches} could not reach a verdict "
                f"{streaks.unsure} times in a row. Latest: {judgement.summary}",
                monitor=monitor,
            )
        check.save()
        monitor.last_checked_at = now
        monitor.save(
            update_fields=["state", "watched_version", "failure_streak", "inconclusive_streak", "last_checked_at"]
        )
    return check


def claim_due(now: datetime | None = None) -> list[int]:
    """Ids of enabled monitors whose next check is due, each claimed by moving `next_check_at` on.

    The claim is a conditional UPDATE, so two dispatchers (two beats, a slow
    one and a fast one) never queue the same monitor's check twice.
    """
    now = now or timezone.now()
    claimed = []
    for pk, due_at, interval in (
        Monitor.objects.active().filter(next_check_at__lte=now).values_list("id", "next_check_at", "interval_seconds")
    ):
        if Monitor.objects.filter(pk=pk, next_check_at=due_at).update(next_check_at=now + timedelta(seconds=interval)):
            claimed.append(pk)
    return claimed
