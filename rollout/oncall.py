"""What the on-call page shows of each production prompt: its monitor, its running canary, its scores.

A fixed number of queries, whatever the number of prompts, and the full rows (stats, charts) for
one page of them only: the page is polled every 30 seconds by every open tab.
"""

from __future__ import annotations

from datetime import datetime

from django.core.paginator import Page, Paginator

from experiments.models import Experiment, ExperimentKind
from promptreg.models import PRODUCTION, Label
from rollout.charts import quality_figures, version_numbers, version_stats
from rollout.models import METRICS, Monitor, MonitorCheck, MonitorState, RollbackIncident


ATTENTION_STATES = (MonitorState.FAILING, MonitorState.NEEDS_HUMAN, MonitorState.ROLLED_BACK)
PAGE_SIZE = 25


def production_overview(since: datetime, page_number: str | int | None = None) -> Page:
    """A page of live production prompts, those that need attention first (a failing, escalated or
    rolled-back monitor or canary monitor, an unacknowledged automatic rollback), then those with a
    running canary, then the rest by name. Each row: label, monitor and its last check, running canary
    with its monitor and last check, per-version stats of every metric since `since`, and the quality
    chart (for prompts that have scores). Only the page's prompts are read in full."""
    live = Label.objects.filter(name=PRODUCTION, prompt__retired_at__isnull=True)
    prompt_ids = list(live.order_by("prompt__name").values_list("prompt_id", flat=True))
    monitors = {m.prompt_id: m for m in Monitor.objects.of_labels().filter(label=PRODUCTION, prompt_id__in=prompt_ids)}
    canaries = {
        e.prompt_id: e
        for e in Experiment.objects.running()
        .filter(kind=ExperimentKind.CANARY, label=PRODUCTION, prompt_id__in=prompt_ids)
        .select_related("treatment_version")
    }
    canary_monitors = {m.experiment_id: m for m in Monitor.objects.filter(experiment__in=canaries.values())}  # disabled ones too
    alarmed = set(RollbackIncident.objects.unacknowledged().values_list("prompt_id", flat=True))
    alarmed |= {m.prompt_id for m in (*monitors.values(), *canary_monitors.values()) if m.state in ATTENTION_STATES}
    prompt_ids.sort(key=lambda pk: (pk not in alarmed, pk not in canaries))
    page = Paginator(prompt_ids, PAGE_SIZE).get_page(page_number)
    shown = list(page)
    labels = {label.prompt_id: label for label in live.filter(prompt_id__in=shown).select_related("prompt", "version")}
    watched = [m.pk for pk, m in monitors.items() if pk in shown] + [m.pk for m in canary_monitors.values() if m.prompt_id in shown]
    last_checks = MonitorCheck.objects.latest_per_monitor(watched)
    metric_of = {pk: monitors[pk].metric if pk in monitors else "quality_score" for pk in shown}
    versions = version_numbers(shown)
    stats = version_stats(versions, shown, list(METRICS), since)
    figures = quality_figures(versions, {pk: metric_of[pk] for pk in shown if stats[pk]})
    rows = []
    for pk in shown:
        label, monitor, canary = labels[pk], monitors.get(pk), canaries.get(pk)
        canary_monitor = canary_monitors.get(canary.pk) if canary else None
        rows.append(
            {
                "label": label,
                "needs_attention": pk in alarmed,
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
    page.object_list = rows
    return page
