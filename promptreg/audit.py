"""The audit trail: versions, reviews, label moves (deploys and rollbacks), prompt changes and
policy changes, merged newest first from the deployment log, the policy log and simple-history's
records. Apps above the registry add their own sources (`register_source`: the experiments app's
traffic changes), so the registry never imports them.

Pages are cut from the merged stream: each source gives at most `offset + size`
rows, so a page costs a fixed number of queries whatever the history's length.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.urls import reverse

from promptreg.models import LabelMove, PolicyChange, Prompt, PromptVersion, Review, ReviewDecision, VersionStatus

KINDS = {
    "version": "New versions and status changes",
    "review": "Reviews",
    "deploy": "Activations and rollbacks",
    "prompt": "Prompt changes (type, retirement)",
    "policy": "Policy changes (type, review policy, gate dataset, scorers)",
}
HIDDEN_DIFF_FIELDS = {"content_hash", "variables"}


@dataclass
class Event:
    kind: str
    key: str
    at: datetime
    who: str
    prompt_name: str
    title: str
    why: str = ""
    url: str = ""
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)
    is_rollback: bool = False
    actor_first: bool = False  # the title is what `who` did: the entry reads "rita requested changes on v7"

    @property
    def sentence(self) -> str:
        """The entry as a sentence: "rita requested changes on v7", "dave rolled back production from v7 to v5"."""
        if not self.actor_first:
            return self.title
        return f"{self.who.split(' (')[0]} {self.title[:1].lower()}{self.title[1:]}"

    @property
    def how(self) -> str:
        """How the actor acted, when `who` says it ("dave (dashboard button)" → "dashboard button")."""
        return self.who.partition(" (")[2].rstrip(")")


@dataclass
class AuditFilter:
    prompt: Prompt | None = None
    kind: str = ""
    user: str = ""
    since: datetime | None = None
    until: datetime | None = None


def window(qs: QuerySet, date_field: str, f: AuditFilter, prompt_field: str, by_user) -> QuerySet:
    """Apply the filter; `by_user(username)` is the Q naming who acted in this source."""
    if f.prompt is not None:
        qs = qs.filter(**{prompt_field: f.prompt.pk})
    if f.since:
        qs = qs.filter(**{f"{date_field}__gte": f.since})
    if f.until:
        qs = qs.filter(**{f"{date_field}__lt": f.until})
    if f.user:
        qs = qs.filter(by_user(f.user))
    return qs.order_by(f"-{date_field}", "-pk")


def _version_url(prompt_name: str, number: int) -> str:
    return reverse("promptreg:version-detail", args=[prompt_name, number])


def _diff(new, old, m2m: dict[int, dict[str, list[str]]]) -> list[tuple[str, Any, Any]]:
    """Changed fields between two historical records, compared on stored values (no queries)."""
    changes = []
    for f in new._meta.concrete_fields:
        if f.name.startswith("history_") or f.name in HIDDEN_DIFF_FIELDS:
            continue
        before, after = getattr(old, f.attname), getattr(new, f.attname)
        if before != after:
            changes.append((f.name, before, after))
    for name in sorted(set(m2m.get(old.history_id, {})) | set(m2m.get(new.history_id, {}))):
        before, after = m2m.get(old.history_id, {}).get(name, []), m2m.get(new.history_id, {}).get(name, [])
        if before != after:
            changes.append((name, ", ".join(before), ", ".join(after)))
    return changes


def _tag_rows(model, history_ids: set[int]) -> dict[int, dict[str, list[str]]]:
    """Tag names per historical record (prompt or version), from simple-history's m2m history table (one query)."""
    rows = model.tags.model.objects.filter(history_id__in=history_ids).values_list("history_id", "tag__name")
    result: dict[int, dict[str, list[str]]] = {}
    for history_id, tag in rows.order_by("tag__name"):
        result.setdefault(history_id, {}).setdefault("tags", []).append(tag)
    for history_id in history_ids:
        result.setdefault(history_id, {}).setdefault("tags", [])
    return result


def _field_changes(records: list, with_tags: bool = False) -> dict[int, list[tuple[str, Any, Any]]]:
    """For each '~' historical record, its field changes against the previous record (fixed query count)."""
    changed = [r for r in records if r.history_type == "~"]
    if not changed:
        return {}
    model = type(changed[0])
    ids = {r.id for r in changed}
    latest = max(r.history_id for r in changed)
    chain_qs = model.objects.filter(id__in=ids, history_id__lte=latest).order_by("id", "history_date", "history_id")
    by_object: dict[int, list] = {}
    for record in chain_qs:
        by_object.setdefault(record.id, []).append(record)
    m2m = _tag_rows(model, {r.history_id for chain in by_object.values() for r in chain}) if with_tags else {}
    result = {}
    for record in changed:
        chain = by_object.get(record.id, [])
        position = next((i for i, r in enumerate(chain) if r.history_id == record.history_id), 0)
        if position:
            result[record.history_id] = _diff(chain[position], chain[position - 1], m2m)
    return result


def _moves(f: AuditFilter, limit: int) -> tuple[int, Iterable[Event]]:
    qs = window(LabelMove.objects.all(), "created_at", f, "prompt_id", lambda u: Q(actor__username=u))
    rows = qs.select_related("prompt", "from_version", "to_version", "actor", "api_key")[:limit]
    events = []
    for m in rows:
        to = f"v{m.to_version.number}"
        if m.is_rollback:
            title = f"Rolled back {m.label} from v{m.from_version.number} to {to}"
        else:
            title = f"Activated {to} in {m.label}" + (
                f" (was v{m.from_version.number})" if m.from_version_id else " (its first version there)"
            )
        events.append(move_event(m, "deploy", f"move-{m.pk}", m.prompt.name, title))
    return qs.count(), events


def move_event(m: LabelMove, kind: str, key: str, prompt_name: str, title: str) -> Event:
    """A label move as an entry of `prompt_name`'s trail (its own, or a dependent's): who, why, overrides, a link."""
    if m.is_override:
        title += ", overriding the gates" + (": " + "; ".join(m.bypassed_gates) if m.bypassed_gates else "")
    return Event(
        kind,
        key,
        m.created_at,
        f"{m.actor_name} ({m.get_via_display().lower()})",
        prompt_name,
        title,
        m.reason,
        _version_url(m.prompt.name, m.to_version.number),
        is_rollback=m.is_rollback,
        actor_first=True,
    )


def _versions(f: AuditFilter, limit: int) -> tuple[int, Iterable[Event]]:
    model = PromptVersion.history.model
    qs = window(
        model.objects.all(),
        "history_date",
        f,
        "prompt_id",
        lambda u: Q(history_type="+", created_by__username=u) | Q(history_type="~", history_user__username=u),
    )
    rows = list(
        qs.select_related("prompt", "history_user", "created_by", "created_by_key").defer(
            "body", "config", "sample_values", "known_edge_cases", "purpose"
        )[:limit]
    )
    changes = _field_changes(rows, with_tags=True)
    events = []
    for r in rows:
        name = r.prompt.name
        if r.history_type == "+":
            who = (
                r.created_by.get_username()
                if r.created_by_id
                else (f"API key {r.created_by_key.name}" if r.created_by_key_id else "promptreg")
            )
            title, why, changed, actor_first = f"Published v{r.number}", r.commit_message, [], True
        else:
            who = r.history_user.get_username() if r.history_user_id else "promptreg"
            why, changed = r.history_change_reason or "", changes.get(r.history_id, [])
            retagged = [c for c in changed if c[0] == "tags"]
            if retagged and len(retagged) == len(changed):
                title, actor_first = f"Tagged v{r.number}", True
            else:
                title, actor_first = _status_sentence(r.number, r.status)
                changed = [c for c in changed if c[0] != "status"]  # the sentence says it
        key, url = f"version-{r.history_id}", _version_url(name, r.number)
        events.append(
            Event("version", key, r.history_date, who, name, title, why, url, changed, actor_first=actor_first)
        )
    return qs.count(), events


def _status_sentence(number: int, status: str) -> tuple[str, bool]:
    """A version's status change in words, and whether it is something its actor did (submitting) or a consequence
    (a review's approval: the review itself is its own entry)."""
    if status == VersionStatus.IN_REVIEW:
        return f"Submitted v{number} for review", True
    words: dict[str, str] = {
        VersionStatus.APPROVED: f"v{number} is approved: it may be activated",
        VersionStatus.CHANGES_REQUESTED: f"v{number} went back to its author for changes",
        VersionStatus.DRAFT: f"v{number} is a draft again",
    }
    return words.get(status, f"v{number} is now {status}"), False


def _reviews(f: AuditFilter, limit: int) -> tuple[int, Iterable[Event]]:
    model = Review.history.model
    qs = window(
        model.objects.filter(history_type="+"),
        "history_date",
        f,
        "version__prompt_id",
        lambda u: Q(reviewer__username=u),
    )
    rows = qs.select_related("version__prompt", "reviewer")[:limit]
    events = []
    for r in rows:
        name = r.version.prompt.name
        verb = {ReviewDecision.APPROVE: "Approved", ReviewDecision.REQUEST_CHANGES: "Requested changes on"}.get(
            r.decision, "Commented on"
        )
        events.append(
            Event(
                "review",
                f"review-{r.history_id}",
                r.history_date,
                r.reviewer.get_username(),
                name,
                f"{verb} v{r.version.number}",
                r.comment,
                _version_url(name, r.version.number),
                actor_first=True,
            )
        )
    return qs.count(), events


def _prompts(f: AuditFilter, limit: int) -> tuple[int, Iterable[Event]]:
    model = Prompt.history.model
    qs = window(model.objects.all(), "history_date", f, "id", lambda u: Q(history_user__username=u))
    rows = list(qs.select_related("history_user", "owner")[:limit])
    changes = _field_changes(rows, with_tags=True)
    events = []
    for r in rows:
        author = r.history_user or (r.owner if r.history_type == "+" else None)
        who = author.get_username() if author else "promptreg"
        title = {"+": "Created the prompt", "~": "Changed the prompt", "-": "Deleted the prompt"}[r.history_type]
        url = reverse("promptreg:prompt-detail", args=[r.name])
        events.append(
            Event(
                "prompt",
                f"prompt-{r.history_id}",
                r.history_date,
                who,
                r.name,
                title,
                r.history_change_reason or "",
                url,
                changes.get(r.history_id, []),
                actor_first=True,
            )
        )
    return qs.count(), events


def _policy(f: AuditFilter, limit: int) -> tuple[int, Iterable[Event]]:
    qs = PolicyChange.objects.all()
    if f.prompt is not None:
        # A review-policy change has no prompt: it concerns every prompt of its type.
        qs = qs.filter(Q(prompt=f.prompt) | Q(prompt__isnull=True, prompt_type=f.prompt.prompt_type))
    qs = window(
        qs,
        "created_at",
        AuditFilter(since=f.since, until=f.until, user=f.user),
        "prompt_id",
        lambda u: Q(actor__username=u),
    )
    rows = qs.select_related("prompt", "actor", "api_key")[:limit]
    events = []
    for c in rows:
        name = c.prompt.name if c.prompt is not None else f"every {c.prompt_type} prompt"
        url = reverse("promptreg:prompt-detail", args=[c.prompt.name]) if c.prompt is not None else ""
        title = f"Changed the {c.get_area_display().lower()}: {c.before or '(none)'} → {c.after or '(none)'}"
        events.append(
            Event(
                "policy",
                f"policy-{c.pk}",
                c.created_at,
                f"{c.actor_name} ({c.via})",
                name,
                title,
                c.reason,
                url,
                actor_first=True,
            )
        )
    return qs.count(), events


Source = Callable[[AuditFilter, int], "tuple[int, Iterable[Event]]"]
SOURCES: dict[str, Source] = {
    "deploy": _moves,
    "version": _versions,
    "review": _reviews,
    "prompt": _prompts,
    "policy": _policy,
}


def register_source(kind: str, description: str, source: Source) -> None:
    """Add a stream of events (newest first, at most `limit`, with the total count) to the audit trail."""
    KINDS[kind] = description
    SOURCES[kind] = source


def audit_page(f: AuditFilter, page: int, size: int = 50) -> tuple[list[Event], int]:
    """One page of events, newest first, and the total number of events matching the filter."""
    offset = (page - 1) * size
    total, streams = 0, []
    for kind, source in SOURCES.items():
        if f.kind and f.kind != kind:
            continue
        count, events = source(f, offset + size)
        total += count
        streams.append(events)
    merged = heapq.merge(*streams, key=lambda e: e.at, reverse=True)
    return list(merged)[offset : offset + size], total
