"""What the on-call page shows of each production prompt: its monitor, its running canary, its scores.

A fixed number of queries for the whole page, whatever the number of prompts: the page is
polled every 30 seconds by every open tab.
"""

from __future__ import annotations

from datetime import datetime

from experiments.models import Experiment, ExperimentKind
from promptreg.models import PRODUCTION, Label
from rollout.charts import quality_figures, version_stats
from rollout.models import METRICS, Monitor, MonitorCheck


def production_overview(since: datetime) -> list[dict]:
    """One row per live production prompt: label, monitor and its last check, running canary with its
    monitor and last check, per-version stats of every metric since `since`, and the quality chart
    (for prompts that have scores)."""
    labels = list(
        Label.objects.filter(name=PRODUCTION, prompt__retired_at__isnull=True).select_related("prompt", "version").order_by("prompt__name")
    )
    prompt_ids = [label.prompt_id for label in labels]
    monitors = {m.prompt_id: m for m in Monitor.objects.of_labels().filter(label=PRODUCTION, prompt_id__in=prompt_ids)}
    canaries = {
        e.prompt_id: e
        for e in Experiment.objects.running()
        .filter(kind=ExperimentKind.CANARY, label=PRODUCTION, prompt_id__in=prompt_ids)
        .select_related("treatment_version")
    }
    canary_monitors = {m.experiment_id: m for m in Monitor.objects.active().filter(experiment__in=canaries.values())}
    last_checks = MonitorCheck.objects.latest_per_monitor([m.pk for m in (*monitors.values(), *canary_monitors.values())])
    metric_of = {pk: monitors[pk].metric if pk in monitors else "quality_score" for pk in prompt_ids}
    stats = version_stats(prompt_ids, list(METRICS), since)
    figures = quality_figures({pk: metric_of[pk] for pk in prompt_ids if stats[pk]})
    rows = []
    for label in labels:
        pk = label.prompt_id
        monitor, canary = monitors.get(pk), canaries.get(pk)
        canary_monitor = canary_monitors.get(canary.pk) if canary else None
        rows.append(
            {
                "label": label,
                "monitor": monitor,
                "last_check": last_checks.get(monitor.pk) if monitor else None,
                "canary": canary,
                "canary_monitor": canary_monitor,
                "canary_check": last_checks.get(canary_monitor.pk) if canary_monitor else None,
                "stats": [(number, [cells.get(m) for m in METRICS]) for number, cells in stats[pk].items()],
                "figure": figures.get(pk),
                "figure_id": f"chart-{pk}",
                "figure_data_id": f"chart-{pk}-data",
                "metric": metric_of[pk],
            }
        )
    return rows
