"""What the incident page shows of an automatic rollback: the rolled-back version's worst production samples, each
beside the previous version's sample with the most similar input."""

from __future__ import annotations

from dataclasses import dataclass

from experiments.samples import SampleView, most_similar, samples_of
from promptreg.models import PromptVersion
from rollout.models import METRICS, RollbackIncident

WORST = 10
CANDIDATES = 500  # the previous version's newest samples searched for a similar input


@dataclass(frozen=True)
class IncidentRow:
    worst: SampleView
    similar: SampleView | None
    similarity: float


@dataclass(frozen=True)
class IncidentSamples:
    metric: str
    bad: PromptVersion
    previous: PromptVersion | None
    rows: list[IncidentRow]


def previous_version(incident: RollbackIncident) -> PromptVersion | None:
    """The version traffic went back to: production's rollback target, or the canary's control."""
    if incident.move is not None:
        return incident.move.to_version
    if incident.experiment is not None:
        return incident.experiment.control_version
    return None


def incident_samples(incident: RollbackIncident, limit: int = WORST) -> IncidentSamples:
    """The `limit` worst samples of the rolled-back version by the monitor's metric, with their look-alikes."""
    metric = incident.monitor.metric
    spec = METRICS.get(metric)
    lower_is_better = spec is not None and not spec.higher_is_better
    bad, previous = incident.from_version, previous_version(incident)
    worst = samples_of(
        prompt=incident.prompt, version=bad, metric=metric, order="worst", lower_is_better=lower_is_better, limit=limit
    )
    candidates = (
        samples_of(prompt=incident.prompt, version=previous, metric=metric, limit=CANDIDATES) if previous else []
    )
    views = {c.sample.pk: c for c in candidates}
    matches = most_similar([w.sample for w in worst], [c.sample for c in candidates])
    rows = []
    for view in worst:
        match = matches.get(view.sample.pk)
        rows.append(IncidentRow(view, views[match[0].pk] if match else None, match[1] if match else 0.0))
    return IncidentSamples(metric, bad, previous, rows)
