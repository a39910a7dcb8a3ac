"""What a monitor's check reads and concludes: the subject it judges and three aggregates.

A check reads three aggregates (n, mean, variance) with SQL, never the scores
themselves, so its cost does not grow with traffic:

- the current version's scores in the floor window,
- the current version's scores in the relative window,
- the baseline: the version a rollback would return to, over the week before
  the current version was activated.

Only scores of the current version since its latest activation count, so a
newly activated version is judged from its first score and never by the
scores of the version it replaced.

A canary monitor (see `Monitor`) judges the canary's treatment version from
the canary's start. Its relative rule compares every treatment score since the
start with the control's scores over the same span: concurrent traffic on the
version production serves, the fairest baseline there is, and a sample that
grows instead of a window that stays small (a 5% canary of 1 score/s sees 45
scores in 15 minutes; in `tests/bench/monitor.py` a 15-minute window concluded
6 of 500 stable 6-hour canaries by chance, all the scores since the start 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, Variance

from experiments.stats import Aggregate
from promptreg.models import Label, LabelMove, PromptVersion
from promptreg.services import rollback_target
from rollout.models import (
    Monitor,
    Outcome,
)
from rollout.rules import combine, evaluate_rules

BASELINE_LOOKBACK = timedelta(days=7)


def score_aggregate(version_id: int, metric: str, start: datetime, end: datetime) -> Aggregate:
    """(n, mean, variance) of one metric of one version in [start, end), in SQL."""
    from experiments.models import Score

    row = Score.objects.filter(version_id=version_id, metric=metric, timestamp__gte=start, timestamp__lt=end).aggregate(
        n=Count("id"), mean=Avg("value"), variance=Variance("value", sample=True)
    )
    return Aggregate(row["n"], row["mean"] or 0.0, row["variance"] or 0.0)


def activation_of(label: Label) -> LabelMove | None:
    """The move that put the label's current version in place (its latest activation)."""
    return (
        LabelMove.objects.filter(prompt_id=label.prompt_id, label=label.name, to_version_id=label.version_id)
        .order_by("-id")
        .first()
    )


@dataclass(frozen=True)
class Subject:
    """What a check judges: a version, since when it serves, and the version it is compared with.

    A `concurrent` baseline (a canary's control) is compared over the same span as
    the version, all of it since `since`; the others are the baseline version's
    week before `since`, compared with the version's relative window.
    """

    version: PromptVersion
    since: datetime
    activation: LabelMove | None = None
    baseline_version: PromptVersion | None = None
    concurrent: bool = False


def subject_of(monitor: Monitor) -> Subject | None:
    """The label's current version (None while it points at none), or the canary's treatment."""
    if monitor.is_canary:
        canary = monitor.experiment
        assert canary is not None and canary.started_at is not None, "a canary monitor watches a started experiment"
        return Subject(
            canary.treatment_version, canary.started_at, baseline_version=canary.control_version, concurrent=True
        )
    label = Label.objects.select_related("version").filter(prompt=monitor.prompt, name=monitor.label).first()
    if label is None:
        return None
    activation = activation_of(label)
    baseline_version = rollback_target(monitor.prompt, monitor.label) if monitor.relative_enabled else None
    return Subject(
        label.version, activation.created_at if activation else label.updated_at, activation, baseline_version
    )


@dataclass
class Judgement:
    version: PromptVersion | None
    activation: LabelMove | None
    outcome: str
    summary: str
    evidence: dict[str, Any]


def judge(monitor: Monitor, now: datetime) -> Judgement:
    """Read the aggregates and apply the rules; no writes."""
    subject = subject_of(monitor)
    if subject is None:
        return Judgement(None, None, Outcome.INCONCLUSIVE, f"{monitor.label} points at no version yet", {})
    version, since = subject.version, subject.since
    end = now + timedelta(microseconds=1)
    floor_start = max(since, now - timedelta(minutes=monitor.floor_window_minutes))
    relative_start = (
        since if subject.concurrent else max(since, now - timedelta(minutes=monitor.relative_window_minutes))
    )
    floor_agg = score_aggregate(version.id, monitor.metric, floor_start, end) if monitor.floor_enabled else Aggregate(0)
    relative_agg = (
        score_aggregate(version.id, monitor.metric, relative_start, end) if monitor.relative_enabled else Aggregate(0)
    )
    baseline_version = subject.baseline_version if monitor.relative_enabled else None
    baseline_window = (relative_start, end) if subject.concurrent else (since - BASELINE_LOOKBACK, since)
    baseline = score_aggregate(baseline_version.id, monitor.metric, *baseline_window) if baseline_version else None
    results = evaluate_rules(monitor, floor_agg, relative_agg, baseline)
    outcome = combine(results)
    canary = monitor.experiment if monitor.is_canary else None
    evidence = {
        "metric": monitor.metric,
        "direction": monitor.spec.direction,
        "version": version.number,
        "canary": {"experiment": canary.pk, "traffic_fraction": canary.traffic_fraction} if canary else None,
        "active_since": since.isoformat(),
        "checked_at": now.isoformat(),
        "floor_window_start": floor_start.isoformat() if monitor.floor_enabled else None,
        "relative_window_start": relative_start.isoformat() if monitor.relative_enabled else None,
        "baseline_version": baseline_version.number if baseline_version else None,
        "baseline_window": [baseline_window[0].isoformat(), min(baseline_window[1], now).isoformat()]
        if baseline_version
        else None,
        "rules": [asdict(r) for r in results],
    }
    summary = f"{'canary ' if canary else ''}v{version.number} {outcome}: " + "; ".join(r.message for r in results)
    return Judgement(version, subject.activation, outcome, summary, evidence)
