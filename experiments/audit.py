"""Experiment and canary traffic changes in the registry's audit trail (registered at start-up)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q
from django.urls import reverse

from experiments.models import ExperimentEvent
from promptreg.audit import AuditFilter, Event, window

KIND = "experiment"
DESCRIPTION = "Experiment and canary traffic changes (start, stop, ship, conclusion)"


def experiment_events(f: AuditFilter, limit: int) -> tuple[int, Iterable[Event]]:
    qs = window(ExperimentEvent.objects.all(), "created_at", f, "prompt_id", lambda u: Q(actor__username=u))
    rows = qs.select_related("experiment", "prompt", "control_version", "treatment_version", "actor", "api_key")[:limit]
    events = [
        Event(
            KIND,
            f"experiment-{e.pk}",
            e.created_at,
            f"{e.actor_name} ({e.via})",
            e.prompt.name,
            e.title,
            e.reason,
            reverse("experiments:experiment-detail", args=[e.experiment_id]),
        )
        for e in rows
    ]
    return qs.count(), events
