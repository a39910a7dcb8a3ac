"""An experiment's analysis: the reads that feed the decision rules of `experiments.decision`.

The `experiment_*` functions read (control, treatment) statistics from SQL, plan sample sizes, store snapshots and feed
the dashboard.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, F, Sum
from django.utils import timezone

from experiments.decision import Analysis, Design, Guardrail, analyse, required_n
from experiments.models import (
    CONTROL,
    TREATMENT,
    AnalysisSnapshot,
    Direction,
    Experiment,
    ExperimentMode,
    ExperimentSession,
    ExperimentState,
    ExperimentTotal,
    MetricKind,
    Score,
)
from experiments.stats import (
    DEFAULT_SEQUENTIAL_TUNING,
    SampleStats,
)
from promptreg.models import PromptVersion


def experiment_required_n(experiment: Experiment) -> tuple[int, int] | None:
    return required_n(
        sd=experiment.baseline_sd,
        mde=experiment.minimum_detectable_effect,
        alpha=experiment.alpha,
        power=experiment.power,
        fraction=experiment.traffic_fraction,
    )


def experiment_design(experiment: Experiment) -> Design:
    required = experiment_required_n(experiment)
    return Design(
        primary_metric=experiment.primary_metric,
        higher_is_better=experiment.primary_direction == Direction.HIGHER,
        proportion=experiment.primary_kind == MetricKind.PROPORTION,
        guardrails=tuple(
            Guardrail(g["metric"], g["margin"], g["direction"] == Direction.HIGHER) for g in experiment.guardrails
        ),
        alpha=experiment.alpha,
        treatment_fraction=experiment.traffic_fraction,
        min_samples_per_variant=experiment.min_samples_per_variant,
        sequential=experiment.mode == ExperimentMode.SEQUENTIAL,
        required_n=required,
        # The sequence is tightest where the plan expects to stop.
        sequential_tuning=float(sum(required)) if required else DEFAULT_SEQUENTIAL_TUNING,
    )


def experiment_data(experiment: Experiment) -> dict[str, tuple[SampleStats, SampleStats]]:
    """(control, treatment) sufficient statistics of session means per metric: a handful of rows,
    whatever the number of scores."""
    rows = ExperimentTotal.objects.filter(experiment=experiment, metric__in=experiment.metrics)
    found = {(r.metric, r.variant): SampleStats(r.sessions, r.sum, r.sum_sq) for r in rows}
    empty = SampleStats(0, 0.0, 0.0)
    return {m: (found.get((m, CONTROL), empty), found.get((m, TREATMENT), empty)) for m in experiment.metrics}


def experiment_analyse(experiment: Experiment) -> Analysis:
    return analyse(
        experiment_design(experiment),
        experiment_data(experiment),
        runtime_ok=experiment.runtime >= experiment.min_runtime,
    )


def experiment_snapshot(experiment_id: int) -> AnalysisSnapshot | None:
    """Compute and store the current analysis (the dashboard's time series); skipped while no
    new data arrived since the last snapshot of a running experiment."""
    experiment = (
        Experiment.objects.select_related("prompt", "control_version", "treatment_version")
        .filter(pk=experiment_id)
        .first()
    )
    if experiment is None or experiment.state == ExperimentState.DRAFT:
        return None
    result = experiment_analyse(experiment).to_dict()
    result["scores"] = dict(
        ExperimentTotal.objects.filter(experiment=experiment, metric=experiment.primary_metric).values_list(
            "variant", "scores"
        )
    )
    last: AnalysisSnapshot | None = experiment.snapshots.order_by("-computed_at", "-id").first()
    if last is not None and last.result == result:
        return last
    return AnalysisSnapshot.objects.create(experiment=experiment, decision=result["decision"], result=result)


def experiments_snapshot_running() -> int:
    """One pass over every running experiment (what beat runs)."""
    count = 0
    for experiment_id in Experiment.objects.running().values_list("pk", flat=True):
        count += experiment_snapshot(experiment_id) is not None
    return count


CHART_POINTS = 200


DISTRIBUTION_SESSIONS = 5000


def experiment_history(experiment: Experiment, points: int = CHART_POINTS) -> list[dict[str, Any]]:
    """Stored snapshots, thinned evenly to at most `points` (the newest always included)."""
    ids = list(experiment.snapshots.order_by("computed_at", "id").values_list("id", flat=True))
    if len(ids) > points:
        step = len(ids) / points
        ids = sorted({ids[int(i * step)] for i in range(points)} | {ids[-1]})
    rows = AnalysisSnapshot.objects.filter(id__in=ids).order_by("computed_at", "id")
    return [{"at": s.computed_at.isoformat(), "decision": s.decision, "result": s.result} for s in rows]


def experiment_session_means(
    experiment: Experiment, metric: str, limit: int = DISTRIBUTION_SESSIONS
) -> dict[str, list[float]]:
    """Per-session means of a metric for each variant (at most `limit` sessions each, for a histogram)."""
    means: dict[str, list[float]] = {}
    for variant in (CONTROL, TREATMENT):
        rows = ExperimentSession.objects.filter(experiment=experiment, metric=metric, variant=variant).values_list(
            "n", "total"
        )[:limit]
        means[variant] = [total / n for n, total in rows if n]
    return means


def baseline_estimate(version: PromptVersion, metric: str) -> tuple[int, float | None, float | None]:
    """(n, mean, sd) of a metric's recent scores for a version, from SQL aggregates; the
    standard deviation the power calculation uses when none is given."""
    since = timezone.now() - BASELINE_WINDOW
    agg = Score.objects.filter(version=version, metric=metric, timestamp__gte=since).aggregate(
        n=Count("id"), s=Sum("value"), ss=Sum(F("value") * F("value"))
    )
    summary = SampleStats(agg["n"], agg["s"] or 0.0, agg["ss"] or 0.0)
    if summary.n < 2:
        return summary.n, None, None
    return summary.n, summary.mean, summary.variance**0.5


BASELINE_WINDOW = timedelta(days=14)
