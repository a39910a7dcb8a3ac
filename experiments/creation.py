"""Creating an A/B experiment or a canary: its design checked field by field (versions, traffic, metrics,
guardrails, sample size) with a clear error for each bad value.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from experiments.analysis import baseline_estimate
from experiments.models import (
    Direction,
    Experiment,
    ExperimentKind,
    ExperimentMode,
    MetricKind,
)
from experiments.scores import METRIC_RE
from promptreg.exceptions import InvalidInput, NotFound
from promptreg.history import set_change_reason
from promptreg.models import Prompt, PromptVersion, Scope, validate_label_name
from promptreg.services import Actor

DEFAULT_CANARY_FRACTION = 0.05
DEFAULT_EXPERIMENT_FRACTION = 0.5


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
