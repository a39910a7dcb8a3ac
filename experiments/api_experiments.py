"""JSON API for online experiments: score ingestion and experiments as code."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema

from experiments import analysis, creation, services
from experiments.models import Experiment
from experiments.scores import MAX_BATCH, scores_ingest
from promptreg.api_auth import ApiKeyAuth, api_actor
from promptreg.exceptions import NotFound
from promptreg.models import Scope

router = Router(tags=["experiments"])


class ScoresIn(Schema):
    scores: list[dict[str, Any]]


class ScoresOut(Schema):
    scores: int
    values_stored: int
    values_duplicate: int


@router.post(
    "/scores",
    auth=ApiKeyAuth(Scope.WRITE),
    response=ScoresOut,
    summary="Post scores (up to 1,000 per request)",
    description=(
        f'Up to {MAX_BATCH:,} scores: `{{"id","prompt","version","session_id","experiment","variant",'
        '"metrics": {"quality_score": 0.8},"timestamp"}`. Idempotent on `id` (per metric). All or nothing: '
        "a bad item is a 400 whose `error.index` names it, and nothing from the request is stored. "
        "An experiment's variant comes from the session; a `variant` that disagrees is a 400. "
        'A score may carry `"sample": {"variables": {...}, "output": "…"}`, kept at the prompt\'s sampling rate.'
    ),
)
def post_scores(request: HttpRequest, payload: ScoresIn):
    return scores_ingest(scores=payload.scores, actor=api_actor(request)).to_dict()


class GuardrailIn(Schema):
    metric: str
    direction: Literal["higher_is_better", "lower_is_better"] = "higher_is_better"
    margin: float = Field(description="Absolute, in the metric's own units: how much worse is still acceptable.")


class ExperimentIn(Schema):
    prompt: str
    label: str = "production"
    control_version: int
    treatment_version: int
    traffic_fraction: float | None = Field(
        None, description="Share of sessions that get the treatment: 0.5 unless given, a canary 0.05."
    )
    primary_metric: str = "quality_score"
    primary_direction: Literal["higher_is_better", "lower_is_better"] = "higher_is_better"
    primary_kind: Literal["mean", "proportion"] = "mean"
    guardrails: list[GuardrailIn] = Field(default_factory=list)
    alpha: float = 0.05
    power: float = 0.8
    minimum_detectable_effect: float | None = Field(
        None, description="Smallest absolute change worth detecting; sets the required sample size."
    )
    baseline_sd: float | None = Field(
        None, description="Per-session standard deviation; estimated from the control's recent scores if omitted."
    )
    min_samples_per_variant: int = 100
    min_runtime_hours: float = 0
    mode: Literal["fixed", "sequential"] = "sequential"
    kind: Literal["experiment", "canary"] = "experiment"
    hypothesis: str = ""


class ReasonIn(Schema):
    reason: str = ""


class ShipIn(Schema):
    reason: str
    override: bool = Field(
        False,
        description="Ship whatever the analysis says (needs an `admin` key and a reason); recorded as an override.",
    )


class StartIn(Schema):
    override: bool = Field(
        False,
        description="Start although the treatment misses the label's gates (needs an `admin` key and a reason); "
        "recorded.",
    )
    reason: str = ""


def experiment_json(experiment: Experiment, *, with_analysis: bool = True) -> dict[str, Any]:
    """The config, the state and (by default) the current analysis."""
    required = analysis.experiment_required_n(experiment)
    data: dict[str, Any] = {
        "id": experiment.pk,
        "kind": experiment.kind,
        "prompt": experiment.prompt.name,
        "label": experiment.label,
        "control_version": experiment.control_version.number,
        "treatment_version": experiment.treatment_version.number,
        "traffic_fraction": experiment.traffic_fraction,
        "primary_metric": experiment.primary_metric,
        "primary_direction": experiment.primary_direction,
        "primary_kind": experiment.primary_kind,
        "guardrails": experiment.guardrails,
        "alpha": experiment.alpha,
        "power": experiment.power,
        "minimum_detectable_effect": experiment.minimum_detectable_effect,
        "baseline_sd": experiment.baseline_sd,
        "min_samples_per_variant": experiment.min_samples_per_variant,
        "min_runtime_hours": experiment.min_runtime.total_seconds() / 3600,
        "mode": experiment.mode,
        "hypothesis": experiment.hypothesis,
        "state": experiment.state,
        "created_at": experiment.created_at.isoformat(),
        "started_at": experiment.started_at.isoformat() if experiment.started_at else None,
        "ended_at": experiment.ended_at.isoformat() if experiment.ended_at else None,
        "end_reason": experiment.end_reason,
        "shipped": experiment.shipped_move_id is not None,
        "required_n_per_variant": max(required) if required else None,
    }
    if with_analysis:
        data["analysis"] = analysis.experiment_analyse(experiment).to_dict() if experiment.state != "draft" else None
    return data


def _get(experiment_id: int) -> Experiment:
    found = (
        Experiment.objects.select_related("prompt", "control_version", "treatment_version")
        .filter(pk=experiment_id)
        .first()
    )
    if found is None:
        raise NotFound(f"No experiment {experiment_id}.", code="experiment_not_found")
    return found


@router.post(
    "/experiments", auth=ApiKeyAuth(Scope.DEPLOY), response={201: dict}, summary="Create an experiment (a draft)"
)
def create_experiment(request: HttpRequest, payload: ExperimentIn):
    data = payload.dict()
    experiment = creation.experiment_create(actor=api_actor(request), **data)
    return 201, experiment_json(_get(experiment.pk))


@router.get(
    "/experiments/{int:experiment_id}",
    auth=ApiKeyAuth(Scope.READ),
    response=dict,
    summary="Config, state and current analysis",
)
def get_experiment(request: HttpRequest, experiment_id: int):
    return experiment_json(_get(experiment_id))


@router.post(
    "/experiments/{int:experiment_id}/start",
    auth=ApiKeyAuth(Scope.DEPLOY),
    response=dict,
    summary="Start routing traffic (the treatment must pass the label's gates)",
    description=(
        "The treatment gets real traffic, so it meets the gates of the label it takes traffic from, as a label move "
        "would: a 400 `gate_blocked` names each missing gate in `error.missing`. `override: true` with a reason and an "
        "`admin` key starts anyway, recorded as an override."
    ),
)
def start_experiment(request: HttpRequest, experiment_id: int, payload: StartIn | None = None):
    payload = payload or StartIn(override=False)
    services.experiment_start(
        experiment_id=experiment_id, actor=api_actor(request), override=payload.override, reason=payload.reason
    )
    return experiment_json(_get(experiment_id))


@router.post(
    "/experiments/{int:experiment_id}/stop",
    auth=ApiKeyAuth(Scope.DEPLOY),
    response=dict,
    summary="Kill switch: everyone gets the control",
)
def stop_experiment(request: HttpRequest, experiment_id: int, payload: ReasonIn | None = None):
    services.experiment_stop(
        experiment_id=experiment_id, actor=api_actor(request), reason=payload.reason if payload else ""
    )
    return experiment_json(_get(experiment_id))


@router.post(
    "/experiments/{int:experiment_id}/ship",
    auth=ApiKeyAuth(Scope.DEPLOY),
    response=dict,
    summary="Move the label to the treatment (gates apply) and conclude (a canary: promote)",
    description=(
        "Only on a verdict that allows it: `ship_treatment` (a canary: also no significant difference with every "
        "guardrail "
        "non-inferior, after the minimum samples). Otherwise 400 `ship_blocked` naming the decision; `override: true` "
        "with "
        "an `admin` key ships anyway, recorded as an override."
    ),
)
def ship_experiment(request: HttpRequest, experiment_id: int, payload: ShipIn):
    services.experiment_ship(
        experiment_id=experiment_id, actor=api_actor(request), reason=payload.reason, override=payload.override
    )
    return experiment_json(_get(experiment_id))


@router.post(
    "/experiments/{int:experiment_id}/conclude",
    auth=ApiKeyAuth(Scope.DEPLOY),
    response=dict,
    summary="Conclude keeping the control (a canary: roll back)",
)
def conclude_experiment(request: HttpRequest, experiment_id: int, payload: ReasonIn):
    services.experiment_conclude(experiment_id=experiment_id, actor=api_actor(request), reason=payload.reason)
    return experiment_json(_get(experiment_id))
