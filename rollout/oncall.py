"""What the on-call page shows of each production prompt: its monitor, its running canary, its scores."""

from __future__ import annotations

from datetime import datetime

from experiments.models import Experiment, ExperimentKind
from promptreg.models import PRODUCTION, Label
from rollout.charts import quality_figure, version_stats
from rollout.models import METRICS, Monitor


def production_overview(since: datetime) -> list[dict]:
    """One row per live production prompt: label, monitor and its last check, running canary with its
    monitor and last check, per-version stats of every metric since `since`, and the quality chart."""
    labels = (
        Label.objects.filter(name=PRODUCTION, prompt__retired_at__isnull=True)
        .select_related("prompt", "version")
        .order_by("prompt__name")
    )
    monitors = {m.prompt_id: m for m in Monitor.objects.of_labels().filter(label=PRODUCTION)}
    canaries = {
        e.prompt_id: e
        for e in Experiment.objects.running().filter(kind=ExperimentKind.CANARY, label=PRODUCTION).select_related("treatment_version")
    }
    canary_monitors = {m.experiment_id: m for m in Monitor.objects.active().filter(experiment__in=canaries.values())}
    rows = []
    for label in labels:
        monitor = monitors.get(label.prompt_id)
        metric = monitor.metric if monitor else "quality_score"
        canary = canaries.get(label.prompt_id)
        canary_monitor = canary_monitors.get(canary.pk) if canary else None
        stats = version_stats(label.prompt, list(METRICS), since)
        rows.append(
            {
                "label": label,
                "monitor": monitor,
                "last_check": monitor.checks.first() if monitor else None,
                "canary": canary,
                "canary_monitor": canary_monitor,
                "canary_check": canary_monitor.checks.first() if canary_monitor else None,
                "stats": [(number, [cells.get(m) for m in METRICS]) for number, cells in stats.items()],
                "figure": quality_figure(label.prompt, metric),
                "figure_id": f"chart-{label.prompt_id}",
                "figure_data_id": f"chart-{label.prompt_id}-data",
                "metric": metric,
            }
        )
    return rows
