"""What the index of includes (`Inclusion`, written at publish) serves: the prompts that include a prompt are one
query per level away, so serving invalidates them with it, retiring a prompt they serve is refused, and a label move
lists the ones whose served text it changes (`affected`), checks they still resolve after it (`check_dependents`),
holds it to the included prompt's gates when one of them is gated at the label it serves (`move_gates`), holds a
gated label's includes to their own prompts' gates (`include_gaps`), and records the change in each one's audit
trail (`DependentChange`). Resolution itself is `promptreg.composition`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from promptreg.composition import CompositionError, has_tags, resolve
from promptreg.exceptions import InvalidInput
from promptreg.gates import policy_gaps, protected_labels
from promptreg.models import LATEST, DependentChange, Inclusion, LabelMove, Prompt, PromptVersion, ReviewPolicy


def require_unused(name: str) -> None:
    """Before a prompt is retired: no other prompt may serve it (a label or `latest` on a version including it), or
    their fetches would fail."""
    served = []
    rows = Inclusion.objects.filter(name=name, version__prompt__retired_at__isnull=True).select_related(
        "version__prompt"
    )
    for inclusion in rows.order_by("version__prompt__name", "version__number"):
        version = inclusion.version
        labels = sorted(version.labels.values_list("name", flat=True))
        if not version.prompt.versions.filter(number__gt=version.number).exists():
            labels.append(LATEST)
        if labels:
            served.append(f"{version.prompt.name} v{version.number} ({', '.join(labels)})")
    if served:
        raise InvalidInput(
            f"'{name}' is included by {', '.join(dict.fromkeys(served))}: retiring it would break them. Publish and "
            "activate versions of those without it (or retire them) first.",
            code="prompt_in_use",
        )


def dependents(names: Iterable[str]) -> list[str]:
    """The prompts with a version that includes one of `names`, directly or through others (one query per level)."""
    seen: dict[str, None] = {}
    frontier = set(names)
    while frontier:
        found = set(
            Inclusion.objects.filter(name__in=frontier).values_list("version__prompt__name", flat=True).distinct()
        )
        frontier = found - seen.keys() - set(names)
        seen.update(dict.fromkeys(sorted(frontier)))
    return list(seen)


@dataclass(frozen=True)
class Affected:
    """A dependent's label whose served text follows the moving label."""

    prompt: Prompt
    label: str
    version: int
    gated: bool

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.prompt.name, "label": self.label, "version": self.version, "gated": self.gated}


def affected(name: str, label: str) -> list[Affected]:
    """Every (dependent, label) whose served version includes `name` at `label`, directly or through others."""
    result = []
    for prompt in Prompt.objects.active().filter(name__in=dependents([name])).order_by("name"):
        served = [(lb.name, lb.version) for lb in prompt.labels.select_related("version").order_by("name")]
        latest = prompt.latest_version()
        if latest is not None:
            served.append((LATEST, latest))
        gated = set(ReviewPolicy.for_type(prompt.prompt_type).gated_labels)
        for served_label, version in served:
            version.prompt = prompt
            try:
                deps = resolve(version).dependencies
            except CompositionError:
                continue  # it does not serve now; the move does not change that
            if any(d["name"] == name and d["label"] == label for d in deps):
                result.append(Affected(prompt, served_label, version.number, served_label in gated))
    return result


def check_dependents(name: str, label: str, found: list[Affected]) -> None:
    """After `label` of `name` moved (inside its transaction): every dependent it reached must still resolve (a
    composed text may outgrow the size limit), else the move is refused and undone."""
    for a in found:
        version = a.prompt.versions.get(number=a.version)
        version.prompt = a.prompt
        try:
            resolve(version)
        except CompositionError as exc:
            raise CompositionError(
                f"Moving {name}@{label} would break {a.prompt.name}@{a.label} (v{a.version}): {exc.message}",
                code=exc.code,
            ) from None


def impact(label: str, found: Iterable[dict[str, Any]]) -> str:
    """'2 prompts include this at production: faq-answer (production v4, gated; latest v5), refund-system (staging
    v2).' from `Affected.as_dict()`s; empty when nothing includes it."""
    by_prompt: dict[str, list[str]] = {}
    for a in found:
        by_prompt.setdefault(a["name"], []).append(f"{a['label']} v{a['version']}" + (", gated" if a["gated"] else ""))
    if not by_prompt:
        return ""
    count = len(by_prompt)
    listed = ", ".join(f"{n} ({'; '.join(labels)})" for n, labels in by_prompt.items())
    return f"{count} prompt{'s' if count != 1 else ''} include{'s' if count == 1 else ''} this at {label}: {listed}."


def move_impact(move: LabelMove) -> str:
    """What a move changed elsewhere, in words, as recorded."""
    return impact(move.label, move_dependents(move))


def impact_for(name: str, label: str) -> str:
    """What moving `label` of `name` would change elsewhere, in words (the dialogs say it before the move)."""
    return impact(label, [a.as_dict() for a in affected(name, label)])


def move_dependents(move: LabelMove) -> list[dict[str, Any]]:
    """The dependents whose served text a move changed, as recorded: `[{"name", "label", "version", "gated"}]`."""
    return [
        {"name": change.prompt.name, **item}
        for change in move.dependent_changes.select_related("prompt").order_by("prompt__name")
        for item in change.labels
    ]


def include_gaps(target: PromptVersion) -> list[str]:
    """What `target`'s includes (at any depth) still need before it takes a gated label. A label gated for the
    included prompt passed its gates when it moved there; every other include must pass them now:

    - one at `latest` changes with every publish, which passes no gate: never, without an override;
    - one at a label ungated for the included prompt (`staging`) must point at a version that passes the included
      prompt's gates, as a later move of that label would have to (else a deployer moves `staging` to unreviewed
      text first, then the dependent to production);
    - one pinned by `version=N` too: the dependent's reviewer sees its text only resolved, not in the diff."""
    if not has_tags(target.kind, target.body):
        return []
    try:
        found = resolve(target).found
    except CompositionError:
        return []  # `check_target` refuses it
    gaps: dict[str, None] = {}
    for ref, version in found.items():
        if ref.label == LATEST:
            gaps[
                f"includes: {ref.name} is included at latest, which every publish changes without a gate; include it "
                "at a label or a version"
            ] = None
        elif not ref.label or ref.label not in protected_labels(version.prompt.prompt_type):
            where = f"{ref.name}@{ref.label} (v{version.number})" if ref.label else f"{ref.name} v{version.number}"
            for gap in policy_gaps(version):
                gaps[f"includes: {where}: {gap}"] = None
    return list(gaps)


def move_gates(target: PromptVersion, label: str, found: list[Affected]) -> list[str]:
    """What composition adds to the gates of moving `label` to `target` (the dependents `found` serve that label):

    - at a label gated for its own prompt, what it includes must have passed gates too (`include_gaps`);
    - a label not gated for its own prompt still is when a dependent serves it at a gated label: the move must pass
      the included prompt's own gates, as if the label were protected, or a deployer could change a gated production
      text through an ungated include."""
    if label in protected_labels(target.prompt.prompt_type):
        return include_gaps(target)
    gated = sorted({f"{a.prompt.name}@{a.label}" for a in found if a.gated})
    if not gated:
        return []
    because = f" ({', '.join(gated)} include{'s' if len(gated) == 1 else ''} it at {label})"
    return [gap + because for gap in [*policy_gaps(target), *include_gaps(target)]]


def record_dependent_changes(move: LabelMove, found: list[Affected]) -> None:
    """Write the move into each affected dependent's audit trail."""
    by_prompt: dict[int, list[Affected]] = {}
    for a in found:
        by_prompt.setdefault(a.prompt.pk, []).append(a)
    DependentChange.objects.bulk_create(
        [
            DependentChange(
                prompt=items[0].prompt,
                move=move,
                labels=[{"label": a.label, "version": a.version, "gated": a.gated} for a in items],
                created_at=move.created_at,
            )
            for items in by_prompt.values()
        ]
    )
