"""Experiment and canary actions after creation: start, stop (kill switch), ship, conclude; a canary in one step.

Creating one (checking its design) is `experiments.creation`; its analysis is `experiments.analysis`. Every entry point
(dashboard, API, beat) calls these. Start, stop and ship change what a fetch returns, so they send `serving_changed`
after commit.
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from experiments.analysis import experiment_analyse, experiment_snapshot
from experiments.creation import DEFAULT_CANARY_FRACTION, experiment_create
from experiments.decision import INVALID_SRM, NO_DIFFERENCE, SHIP, Analysis
from experiments.models import (
    Experiment,
    ExperimentAction,
    ExperimentEvent,
    ExperimentKind,
    ExperimentState,
)
from promptreg import signals
from promptreg.exceptions import Conflict, GateBlocked, InvalidInput, NotFound
from promptreg.gates import missing_gates
from promptreg.history import set_change_reason
from promptreg.models import Label, MoveVia, Prompt, Scope
from promptreg.services import Actor, event_emit, label_move


def _serving_changed(prompt_name: str) -> None:
    transaction.on_commit(partial(signals.serving_changed.send, sender=Experiment, prompt_name=prompt_name))


def _lock(experiment_id: int) -> Experiment:
    try:
        return (
            Experiment.objects.select_for_update()
            .select_related("prompt", "control_version", "treatment_version")
            .get(pk=experiment_id)
        )
    except Experiment.DoesNotExist:
        raise NotFound(f"No experiment {experiment_id}.", code="experiment_not_found") from None


def _snapshot_on_commit(experiment: Experiment) -> None:
    """The analysis as it stood when the experiment ended: the last point of its charts."""
    transaction.on_commit(partial(experiment_snapshot, experiment.pk))


def _transition(experiment: Experiment, state: str, reason: str, actor: Actor) -> None:
    experiment.state = state
    why = f"{state} by {actor.name}: {reason}" if reason else f"{state} by {actor.name}"
    set_change_reason(experiment, why)
    experiment.save()


def _record(
    experiment: Experiment,
    action: str,
    actor: Actor,
    reason: str,
    *,
    share: float,
    decision: str = "",
    bypassed: list[str] | None = None,
) -> ExperimentEvent:
    """The traffic change in the prompt's audit trail and the deployment timeline."""
    return ExperimentEvent.objects.create(
        experiment=experiment,
        prompt=experiment.prompt,
        label=experiment.label,
        action=action,
        control_version=experiment.control_version,
        treatment_version=experiment.treatment_version,
        treatment_share=share,
        decision=decision,
        is_override=bool(bypassed),
        bypassed=bypassed or [],
        via=actor.via,
        reason=reason,
        **actor.record(),
    )


def _override_reason(override: bool, reason: str, actor: Actor, action: str) -> str:
    reason = (reason or "").strip()
    if override:
        actor.require_override(action)
        if not reason:
            raise InvalidInput("An override needs a reason (it is recorded).", code="missing_field")
    return reason


@transaction.atomic
def experiment_start(*, experiment_id: int, actor: Actor, override: bool = False, reason: str = "") -> Experiment:
    """Start routing traffic: the control must be what the label serves now, and only one
    experiment may run per prompt and label. Metrics and margins are locked from here on.

    The treatment gets real traffic, so it must pass the gates of the label it takes traffic
    from, as if the label moved to it; `override` (admin, with a reason) bypasses them, recorded."""
    actor.require(Scope.DEPLOY, "Starting an experiment")
    reason = _override_reason(override, reason, actor, "Overriding the gates of an experiment's treatment")
    Prompt.objects.select_for_update().filter(experiments__pk=experiment_id).first()  # serialise with label moves
    experiment = _lock(experiment_id)
    if experiment.state != ExperimentState.DRAFT:
        raise InvalidInput(
            f"Experiment {experiment_id} is {experiment.state}; only a draft can start.", code="invalid_state"
        )
    missing = missing_gates(experiment.treatment_version, experiment.label)
    if missing and not override:
        raise GateBlocked(
            f"v{experiment.treatment_version.number} cannot take {experiment.label} traffic yet: "
            + "; ".join(missing)
            + ".",
            details={"missing": missing},
        )
    if experiment.prompt.is_retired:
        raise InvalidInput(f"'{experiment.prompt.name}' is retired.", code="prompt_retired")
    live = (
        Label.objects.filter(prompt=experiment.prompt, name=experiment.label)
        .values_list("version_id", flat=True)
        .first()
    )
    if live != experiment.control_version_id:
        raise InvalidInput(
            f"The control must be the version {experiment.label} serves now (v{experiment.control_version.number}); "
            f"{experiment.label} points at {'another version' if live else 'nothing'}.",
            code="control_not_live",
        )
    other = (
        Experiment.objects.running()
        .filter(prompt=experiment.prompt, label=experiment.label)
        .exclude(pk=experiment.pk)
        .first()
    )
    if other is not None:
        raise Conflict(
            f"Experiment {other.pk} is already running on {experiment.prompt.name}@{experiment.label}; stop it first.",
            code="experiment_running",
        )
    experiment.started_at = timezone.now()
    try:
        with transaction.atomic():
            _transition(experiment, ExperimentState.RUNNING, reason, actor)
    except IntegrityError:
        raise Conflict(
            f"Another experiment is running on {experiment.prompt.name}@{experiment.label}.", code="experiment_running"
        ) from None
    _record(
        experiment,
        ExperimentAction.START,
        actor,
        reason,
        share=experiment.traffic_fraction,
        bypassed=missing if override else [],
    )
    _serving_changed(experiment.prompt.name)
    event_emit("experiment.started", experiment.prompt, experiment, actor, reason)
    return experiment


@transaction.atomic
def experiment_stop(*, experiment_id: int, actor: Actor, reason: str = "") -> Experiment:
    """The kill switch: from the next fetch on, every session gets the control."""
    actor.require(Scope.DEPLOY, "Stopping an experiment")
    experiment = _lock(experiment_id)
    if experiment.state != ExperimentState.RUNNING:
        raise InvalidInput(f"Experiment {experiment_id} is {experiment.state}, not running.", code="invalid_state")
    experiment.ended_at = timezone.now()
    experiment.end_reason = (reason or "").strip() or "stopped"
    _transition(experiment, ExperimentState.STOPPED, experiment.end_reason, actor)
    _record(experiment, ExperimentAction.STOP, actor, experiment.end_reason, share=0.0)
    _serving_changed(experiment.prompt.name)
    _snapshot_on_commit(experiment)
    event_emit("experiment.stopped", experiment.prompt, experiment, actor, experiment.end_reason)
    return experiment


@transaction.atomic
def experiment_conclude(*, experiment_id: int, actor: Actor, reason: str) -> Experiment:
    """Close the experiment keeping the control (a canary's roll back); traffic returns to the control."""
    actor.require(Scope.DEPLOY, "Concluding an experiment")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why (it goes in the experiment's history).", code="missing_field")
    experiment = _lock(experiment_id)
    if experiment.state not in (ExperimentState.RUNNING, ExperimentState.STOPPED):
        raise InvalidInput(f"Experiment {experiment_id} is {experiment.state}.", code="invalid_state")
    experiment.ended_at = experiment.ended_at or timezone.now()
    experiment.end_reason = reason
    was_running = experiment.state == ExperimentState.RUNNING
    _transition(experiment, ExperimentState.CONCLUDED, reason, actor)
    _record(experiment, ExperimentAction.CONCLUDE, actor, reason, share=0.0)
    _serving_changed(experiment.prompt.name)
    _snapshot_on_commit(experiment)
    if was_running:  # traffic returns to the control now; concluding a stopped experiment changes nothing served
        event_emit("experiment.stopped", experiment.prompt, experiment, actor, reason)
    return experiment


def ship_blocker(experiment: Experiment, analysis: Analysis) -> str | None:
    """Why the verdict does not allow shipping, or None. An experiment ships on `ship_treatment`; a
    canary also on no significant difference when every guardrail is proven non-inferior (it is a
    safety check, not a search for a lift), and never before the minimum samples."""
    if analysis.decision == SHIP:
        return None
    unproven = [g["metric"] for g in analysis.guardrails if not g["non_inferior"]]
    if experiment.kind == ExperimentKind.CANARY and analysis.decision == NO_DIFFERENCE and not unproven:
        return None
    why = f"the analysis decision is {analysis.decision}, not {SHIP}"
    if experiment.kind == ExperimentKind.CANARY and analysis.decision == NO_DIFFERENCE:
        why += (
            f" (a canary ships on no significant difference only when every guardrail is non-inferior: "
            f"{', '.join(unproven)} is not yet)"
        )
    return why


@transaction.atomic
def experiment_ship(*, experiment_id: int, actor: Actor, reason: str, override: bool = False) -> Experiment:
    """Move the label to the treatment through the registry's `label_move` (its gates apply,
    and the move is in the deployment log as made by an experiment), then conclude.

    Only on a verdict that allows it (`ship_blocker`); `override` (admin) ships anyway and is
    recorded with what it bypassed. Never while the split is broken (`invalid_srm`): the numbers
    cannot be trusted, override or not."""
    actor.require(Scope.DEPLOY, "Shipping an experiment")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Say why you ship (it goes in the deployment log).", code="missing_field")
    if override:
        actor.require_override("Shipping against the analysis")
    Prompt.objects.select_for_update(of=("self",)).filter(
        experiments__pk=experiment_id
    ).first()  # the prompt first, as start does
    experiment = _lock(experiment_id)
    if experiment.state not in (ExperimentState.RUNNING, ExperimentState.STOPPED):
        raise InvalidInput(
            f"Experiment {experiment_id} is {experiment.state}; only a running or stopped one ships.",
            code="invalid_state",
        )
    analysis = experiment_analyse(experiment)
    if analysis.decision == INVALID_SRM:
        raise InvalidInput("Cannot ship: " + analysis.explanation, code="invalid_srm")
    blocker = ship_blocker(experiment, analysis)
    if blocker and not override:
        raise InvalidInput(
            f"Cannot ship: {blocker}. {analysis.explanation}",
            code="ship_blocked",
            details={"decision": analysis.decision},
        )
    move = label_move(
        name=experiment.prompt.name,
        label=experiment.label,
        version=experiment.treatment_version.number,
        actor=Actor(via=MoveVia.EXPERIMENT, user=actor.user, api_key=actor.api_key),
        reason=f"{experiment} ({analysis.decision}): {reason}",
        override=override,
    )
    experiment.shipped_move = move
    experiment.ended_at = experiment.ended_at or timezone.now()
    experiment.end_reason = f"shipped: {reason}"
    _transition(experiment, ExperimentState.CONCLUDED, experiment.end_reason, actor)
    bypassed = ([f"ship verdict: {blocker}"] if blocker else []) + list(move.bypassed_gates)
    _record(experiment, ExperimentAction.SHIP, actor, reason, share=1.0, decision=analysis.decision, bypassed=bypassed)
    _snapshot_on_commit(experiment)
    event_emit("experiment.shipped", experiment.prompt, experiment, actor, reason)
    return experiment


def canary_start(
    *,
    actor: Actor,
    prompt: str,
    version: int,
    label: str = "production",
    traffic_fraction: float = DEFAULT_CANARY_FRACTION,
    override: bool = False,
    reason: str = "",
    **design: Any,
) -> Experiment:
    """Send a share of the label's traffic (5% by default) to a new version, analysed like any
    experiment; then `experiment_ship` promotes it to 100% or `experiment_conclude` rolls it back."""
    with transaction.atomic():
        found = Prompt.objects.filter(name=prompt).first()
        live = found.label_version(label) if found else None
        if live is None:
            raise InvalidInput(
                f"'{prompt}' has no {label} version to compare the canary with.", code="control_not_live"
            )
        experiment = experiment_create(
            actor=actor,
            prompt=prompt,
            label=label,
            control_version=live.number,
            treatment_version=version,
            traffic_fraction=traffic_fraction,
            kind=ExperimentKind.CANARY,
            **design,
        )
        return experiment_start(experiment_id=experiment.pk, actor=actor, override=override, reason=reason)


def stop_on_foreign_label_move(prompt_id: int, label: str, version_id: int) -> None:
    """A label moved under a running experiment (a deploy or rollback that was not the
    experiment's own ship): its control no longer is what the label serves, so stop it."""
    for experiment in (
        Experiment.objects.running().filter(prompt_id=prompt_id, label=label).exclude(control_version_id=version_id)
    ):
        # InvalidInput: it ended meanwhile (concluded by a person or by its canary monitor), nothing left to stop
        with contextlib.suppress(InvalidInput):
            experiment_stop(
                experiment_id=experiment.pk,
                actor=Actor(via=MoveVia.EXPERIMENT),
                reason="stopped automatically: the label was moved to another version while the experiment ran",
            )
