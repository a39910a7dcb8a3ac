"""What the on-call page shows of each production prompt: its monitor, its running canary or experiment, its scores.

A fixed number of queries, whatever the number of prompts, and the full rows (stats, charts) for
one page of them only: the page is polled every 30 seconds by every open tab.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.paginator import Page, Paginator

from experiments.models import Experiment, ExperimentEvent, ExperimentKind
from promptreg.models import PRODUCTION, Label, LabelMove, MoveVia
from rollout.charts import quality_figures, version_numbers, version_stats
from rollout.models import METRICS, Monitor, MonitorCheck, MonitorState, RollbackIncident

ATTENTION_STATES = (MonitorState.FAILING, MonitorState.NEEDS_HUMAN, MonitorState.ROLLED_BACK)
PAGE_SIZE = 25


def production_overview(since: datetime, page_number: str | int | None = None) -> Page:
    """A page of live production prompts, those that need attention first (a failing, escalated or
    rolled-back monitor or canary monitor, an unacknowledged automatic rollback), then those with a
    running canary or experiment, then the rest by name. Each row: label, monitor and its last check, running canary
    (with its monitor and last check) or experiment, per-version stats of every metric since `since`, and the quality
    chart (for prompts that have scores). Only the page's prompts are read in full."""
    live = Label.objects.filter(name=PRODUCTION, prompt__retired_at__isnull=True)
    prompt_ids = list(live.order_by("prompt__name").values_list("prompt_id", flat=True))
    monitors = {m.prompt_id: m for m in Monitor.objects.of_labels().filter(label=PRODUCTION, prompt_id__in=prompt_ids)}
    # At most one experiment runs per prompt and label: a canary, or an A/B experiment sharing production's traffic.
    running = {
        e.prompt_id: e
        for e in Experiment.objects.running()
        .filter(label=PRODUCTION, prompt_id__in=prompt_ids)
        .select_related("control_version", "treatment_version")
    }
    canaries = {pk: e for pk, e in running.items() if e.kind == ExperimentKind.CANARY}
    canary_monitors = {
        m.experiment_id: m for m in Monitor.objects.filter(experiment__in=canaries.values())
    }  # disabled ones too
    alarmed = set(RollbackIncident.objects.unacknowledged().values_list("prompt_id", flat=True))
    alarmed |= {m.prompt_id for m in (*monitors.values(), *canary_monitors.values()) if m.state in ATTENTION_STATES}
    prompt_ids.sort(key=lambda pk: (pk not in alarmed, pk not in running))
    page: Page[Any] = Paginator(prompt_ids, PAGE_SIZE).get_page(page_number)  # its ids become rows below
    shown = list(page)
    labels = {label.prompt_id: label for label in live.filter(prompt_id__in=shown).select_related("prompt", "version")}
    watched = [m.pk for pk, m in monitors.items() if pk in shown] + [
        m.pk for m in canary_monitors.values() if m.prompt_id in shown
    ]
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
                "experiment": running.get(pk) if canary is None else None,
                "canary_monitor": canary_monitor,
                "canary_check": last_checks.get(canary_monitor.pk) if canary_monitor else None,
                "stats": [
                    (number, [(spec, cells.get(m)) for m, spec in METRICS.items()])
                    for number, cells in stats[pk].items()
                ],
                "figure": figures.get(pk),
                "figure_id": f"chart-{pk}",
                "figure_data_id": f"chart-{pk}-data",
                "metric": metric_of[pk],
            }
        )
    page.object_list = rows
    return page


@dataclass(frozen=True)
class TimelineEntry:
    """One traffic change in the deployment timeline: a label move, or an experiment's start, stop,
    ship or conclusion, with the share of the label's traffic it left on the new version."""

    at: datetime
    prompt_name: str
    label: str
    change: str
    traffic: str
    how: str
    who: str
    why: str
    is_rollback: bool = False
    is_override: bool = False


def _entry(
    record: LabelMove | ExperimentEvent, change: str, traffic: str, via: str, bypassed: list[str], *, is_rollback: bool
) -> TimelineEntry:
    if record.is_override:
        change += " (override: " + "; ".join(bypassed) + ")"
    return TimelineEntry(
        record.created_at,
        record.prompt.name,
        record.label,
        change,
        traffic,
        via,
        record.actor_name,
        record.reason,
        is_rollback,
        record.is_override,
    )


def _move_entry(m: LabelMove) -> TimelineEntry:
    src = f"v{m.from_version.number}" if m.from_version is not None else "—"
    change = f"{src} → v{m.to_version.number}" + (" (rollback)" if m.is_rollback else "")
    traffic = f"100% on v{m.to_version.number}"
    return _entry(m, change, traffic, m.get_via_display(), m.bypassed_gates, is_rollback=m.is_rollback)


def _experiment_entry(e: ExperimentEvent) -> TimelineEntry:
    kind = "canary" if e.experiment.kind == ExperimentKind.CANARY else "experiment"
    change = (
        f"{kind} #{e.experiment_id} {e.get_action_display().lower()}: v{e.control_version.number} / "
        f"v{e.treatment_version.number}"
    )
    if e.decision:
        change += f" (analysis: {e.decision})"
    via = MoveVia(e.via).label if e.via in MoveVia.values else e.via
    traffic = f"{e.treatment_share:.2%} on v{e.treatment_version.number}"
    return _entry(e, change, traffic, via, e.bypassed, is_rollback=False)


def deployment_timeline(limit: int) -> list[TimelineEntry]:
    """The newest `limit` traffic changes across prompts: label moves and experiment events (two queries)."""
    moves = LabelMove.objects.select_related("prompt", "from_version", "to_version", "actor", "api_key")[:limit]
    events = ExperimentEvent.objects.select_related(
        "experiment", "prompt", "control_version", "treatment_version", "actor", "api_key"
    )[:limit]
    merged = heapq.merge(map(_move_entry, moves), map(_experiment_entry, events), key=lambda e: e.at, reverse=True)
    return list(merged)[:limit]
