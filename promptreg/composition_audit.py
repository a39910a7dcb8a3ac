"""A dependent's audit trail shows the label moves of the prompts it includes: its served text changed with them,
without a version of its own (`composition_moves.record_dependent_changes` writes the rows)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q

from promptreg.audit import AuditFilter, Event, move_event, register_source, window
from promptreg.models import DependentChange


def _labels(labels: list[dict]) -> str:
    return ", ".join(f"{x['label']} (v{x['version']}{', gated' if x['gated'] else ''})" for x in labels)


def included_moves(f: AuditFilter, limit: int) -> tuple[int, Iterable[Event]]:
    qs = window(DependentChange.objects.all(), "created_at", f, "prompt_id", lambda u: Q(move__actor__username=u))
    rows = qs.select_related(
        "prompt", "move__prompt", "move__from_version", "move__to_version", "move__actor", "move__api_key"
    )[:limit]
    events = []
    for change in rows:
        m = change.move
        verb = "Rolled back" if m.is_rollback else "Moved"
        was = f"v{m.from_version.number}" if m.from_version is not None else "nothing"
        title = (
            f"{verb} {m.prompt.name}@{m.label} from {was} to v{m.to_version.number}, which {change.prompt.name} "
            f"includes: the text it serves at {_labels(change.labels)} changed"
        )
        events.append(move_event(m, "included", f"included-{change.pk}", change.prompt.name, title))
    return qs.count(), events


def register() -> None:
    register_source("included", "Label moves of included prompts", included_moves)
