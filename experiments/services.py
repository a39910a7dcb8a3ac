"""Experiment and canary actions: create, start, stop (kill switch), ship, conclude (analysis: `experiments.analysis`).

Every entry point (dashboard, API, beat) calls these. Start, stop and ship
change what a fetch returns, so they send `serving_changed` after commit.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from experiments.analysis import baseline_estimate, experiment_analyse, experiment_snapshot
from experiments.decision import INVALID_SRM, NO_DIFFERENCE, SHIP, Analysis
from experiments.models import (
    Direction,
    Experiment,
    ExperimentAction,
    ExperimentEvent,
    ExperimentKind,
    ExperimentMode,
    ExperimentState,
    MetricKind,
)
from experiments.scores import METRIC_RE
from promptreg import signals
from promptreg.exceptions import Conflict, GateBlocked, InvalidInput, NotFound
from promptreg.gates import missing_gates
from promptreg.history import set_change_reason
from promptreg.models import Label, MoveVia, Prompt, PromptVersion, Scope, validate_label_name
from promptreg.services import Actor, event_emit, label_move

DEFAULT_CANARY_FRACTION = 0.05
DEFAULT_EXPERIMENT_FRACTION = 0.5


def _serving_changed(prompt_name: str) -> None:
    transaction.on_commit(partial(signals.serving_changed.send, sender=Experiment, prompt_name=prompt_name))


def _number(value: Any, what: str, *, low: float, high: float, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise InvalidInput(f"{what} must be a {'whole ' if integer else ''}number.", code="invalid_experiment")
    if not low <= value <= high:
        raise InvalidInput(f"{what} must be between {low:g} and {high:g}; got {value:g}.", code="invalid_experiment")
    return value


def _metric(name: Any, what: str) -> str:
    if not isinstance(name, str) or not METRIC_RE.match(name):
        raise InvalidInput(
            f"{what} must be a metric name (letters, digits, '_', '.', ':', '-'), got {name!r}.",
            code="invalid_experiment",
        )
    return name


def _guardrails(raw: Any, primary: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise InvalidInput("guardrails must be a list of {metric, direction, margin}.", code="invalid_experiment")
    clean: list[dict[str, Any]] = []
    for i, g in enumerate(raw):
        if not isinstance(g, dict):
            raise InvalidInput(f"guardrails[{i}] must be an object.", code="invalid_experiment")
        metric = _metric(g.get("metric"), f"guardrails[{i}].metric")
        if metric == primary or metric in {c["metric"] for c in clean}:
            raise InvalidInput(
                f"guardrails[{i}]: '{metric}' is already a metric of this experiment.", code="invalid_experiment"
            )
        direction = g.get("direction", Direction.HIGHER)
        if direction not in Direction.values:
            raise InvalidInput(
                f"guardrails[{i}].direction must be {' or '.join(Direction.values)}.", code="invalid_experiment"
            )
        margin = _number(g.get("margin"), f"guardrails[{i}].margin (absolute, in the metric's units)", low=0, high=1e9)
        clean.append({"metric": metric, "direction": direction, "margin": float(margin)})
    return clean


def _version(prompt: Prompt, number: Any, what: str) -> PromptVersion:
    if isinstance(number, bool) or not isinstance(number, int):
        raise InvalidInput(f"{what} must be a version number.", code="invalid_experiment")
    found = prompt.versions.filter(number=number).first()
    if found is None:
        raise NotFound(f"'{prompt.name}' has no version {number}.", code="version_not_found")
    return found


@transaction.atomic
def experiment_create(
    *,
    actor: Actor,
    prompt: str,
    control_version: int,
    treatment_version: int,
    label: str = "production",
    traffic_fraction: float | None = None,
    primary_metric: str = "quality_score",
    primary_direction: str = Direction.HIGHER,
    primary_kind: str = MetricKind.MEAN,
    guardrails: list[dict[str, Any]] | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    minimum_detectable_effect: float | None = None,
    baseline_sd: float | None = None,
    min_samples_per_variant: int = 100,
    min_runtime_hours: float = 0,
    mode: str = ExperimentMode.SEQUENTIAL,
    kind: str = ExperimentKind.EXPERIMENT,
    hypothesis: str = "",
) -> Experiment:
    """Register an experiment as a draft: the hypothesis, metrics and margins are written down
    before any data is seen, and locked when it starts. Without a `traffic_fraction`, a canary
    sends 5% of the label's traffic to the treatment and an experiment 50%."""
    actor.require(Scope.DEPLOY, "Creating an experiment")
    found = Prompt.objects.filter(name=prompt).first()
    if found is None:
        raise NotFound(f"No prompt named '{prompt}'.", code="prompt_not_found")
    try:
        validate_label_name(label)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], code="invalid_label") from None
    control = _version(found, control_version, "control_version")
    treatment = _version(found, treatment_version, "treatment_version")
    if control.pk == treatment.pk:
        raise InvalidInput("Control and treatment must be different versions.", code="invalid_experiment")
    primary_metric = _metric(primary_metric, "primary_metric")
    if primary_direction not in Direction.values:
        raise InvalidInput(f"primary_direction must be {' or '.join(Direction.values)}.", code="invalid_experiment")
    if primary_kind not in MetricKind.values:
        raise InvalidInput(f"primary_kind must be {' or '.join(MetricKind.values)}.", code="invalid_experiment")
    if mode not in ExperimentMode.values:
        raise InvalidInput("mode must be 'fixed' or 'sequential'.", code="invalid_experiment")
    if kind not in ExperimentKind.values:
        raise InvalidInput("kind must be 'experiment' or 'canary'.", code="invalid_experiment")
    if traffic_fraction is None:
        traffic_fraction = DEFAULT_CANARY_FRACTION if kind == ExperimentKind.CANARY else DEFAULT_EXPERIMENT_FRACTION
    fraction = _number(traffic_fraction, "traffic_fraction", low=0.0001, high=0.9999)
    alpha = _number(alpha, "alpha", low=0.0001, high=0.2)
    power = _number(power, "power", low=0.5, high=0.99)
    min_samples = _number(min_samples_per_variant, "min_samples_per_variant", low=2, high=10**8, integer=True)
    hours = _number(min_runtime_hours, "min_runtime_hours", low=0, high=24 * 365)
    if minimum_detectable_effect is not None:
        minimum_detectable_effect = _number(minimum_detectable_effect, "minimum_detectable_effect", low=1e-12, high=1e9)
    if baseline_sd is not None:
        baseline_sd = _number(baseline_sd, "baseline_sd", low=1e-12, high=1e9)
    elif minimum_detectable_effect is not None:
        _, mean, sd = baseline_estimate(control, primary_metric)
        if primary_kind == MetricKind.PROPORTION and mean is not None and 0 < mean < 1:
            sd = (mean * (1 - mean)) ** 0.5
        baseline_sd = sd
    experiment = Experiment(
        prompt=found,
        label=label,
        kind=kind,
        hypothesis=(hypothesis or "").strip(),
        control_version=control,
        treatment_version=treatment,
        traffic_fraction=float(fraction),
        primary_metric=primary_metric,
        primary_direction=primary_direction,
        primary_kind=primary_kind,
        guardrails=_guardrails(guardrails or [], primary_metric),
        alpha=float(alpha),
        power=float(power),
        minimum_detectable_effect=minimum_detectable_effect,
        baseline_sd=baseline_sd,
        min_samples_per_variant=int(min_samples),
        min_runtime=timedelta(hours=hours),
        mode=mode,
        created_by=actor.user,
        created_by_key=actor.api_key,
    )
    set_change_reason(experiment, f"created by {actor.name}")
    experiment.save()
    return experiment


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


# --- analysis -------------------------------------------------------------------


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


# --- dashboard data ---------------------------------------------------------------
