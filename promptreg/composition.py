"""Prompt composition: a prompt includes another by reference, in Langfuse's tag syntax, so Langfuse prompts import
unchanged:

    @@@langfusePrompt:name=NAME|label=production@@@     whatever NAME's production label points at, at fetch time
    @@@langfusePrompt:name=NAME|version=3@@@            NAME v3, always

Resolved at fetch, recursively (as Langfuse does): the tag is replaced by the included version's text, itself
resolved. Only text prompts can be included; a chat prompt includes them in its messages' content. The included
text's `{{ variables }}` become variables of the result. Publishing refuses a tag that does not resolve, a prompt
that would include itself (directly or through others: by name, whatever the labels) and nesting deeper than
`MAX_DEPTH`; a label move refuses a version whose includes do not resolve or come back to its own prompt.

Every tag is indexed at publish (`Inclusion`), so the prompts that include a prompt are one query per level away:
serving invalidates them with it, and a label move lists the ones whose served text it changes (`affected`), holds
that move to the included prompt's gates when one of them is gated at the label it serves (`move_gates`, which also
keeps `latest` includes, ungated by nature, out of gated labels), and records the change in each one's audit trail
(`DependentChange`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from promptreg.exceptions import InvalidInput
from promptreg.gates import policy_gaps, protected_labels
from promptreg.models import (
    LABEL_RE,
    LATEST,
    DependentChange,
    Inclusion,
    LabelMove,
    Prompt,
    PromptKind,
    PromptVersion,
    ReviewPolicy,
)
from promptreg.templating import Template

TAG_RE = re.compile(r"@@@langfusePrompt:(.*?)@@@")
TAG_START = "@@@langfusePrompt:"
MAX_DEPTH = 5  # Langfuse's MAX_PROMPT_NESTING_DEPTH
MAX_INCLUDES = 100  # resolved tags per fetch, a bound on the work of a wide, repetitive graph


class CompositionError(InvalidInput):
    """A tag that cannot be resolved: malformed, missing, retired, a chat prompt, a cycle or too deep."""

    code = "invalid_reference"


@dataclass(frozen=True)
class Reference:
    name: str
    label: str = ""
    number: int | None = None

    @property
    def tag(self) -> str:
        pin = f"version={self.number}" if self.number is not None else f"label={self.label}"
        return f"{TAG_START}name={self.name}|{pin}@@@"


def parse_tag(inner: str) -> Reference:
    """`name=x|label=production` (or `|version=3`) → a Reference; anything else is refused, saying why."""
    fields: dict[str, str] = {}
    for part in inner.split("|"):
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or key not in ("name", "label", "version") or key in fields or not value:
            raise CompositionError(
                f"'{TAG_START}{inner}@@@' is not a prompt reference: write "
                f"'{TAG_START}name=NAME|label=LABEL@@@' or '{TAG_START}name=NAME|version=N@@@'."
            )
        fields[key] = value
    if "name" not in fields or ("label" in fields) == ("version" in fields):
        raise CompositionError(
            f"'{TAG_START}{inner}@@@' needs a name and exactly one of label= or version= (e.g. "
            f"'{TAG_START}name=NAME|label=production@@@')."
        )
    if "version" in fields:
        if not fields["version"].isdigit() or int(fields["version"]) < 1:
            raise CompositionError(f"'{TAG_START}{inner}@@@': version must be a positive whole number.")
        return Reference(fields["name"], number=int(fields["version"]))
    if fields["label"] != LATEST and not LABEL_RE.match(fields["label"]):
        raise CompositionError(f"'{TAG_START}{inner}@@@': '{fields['label']}' is not a label name.")
    return Reference(fields["name"], label=fields["label"])


def _texts(kind: str, body: Any) -> list[str]:
    if kind == PromptKind.TEXT:
        return [body] if isinstance(body, str) else []
    return [m["content"] for m in body if isinstance(m, dict) and isinstance(m.get("content"), str)]


def references(kind: str, body: Any) -> list[Reference]:
    """The tags of a (valid) template, in order, each once."""
    found = [parse_tag(inner) for text in _texts(kind, body) if TAG_START in text for inner in TAG_RE.findall(text)]
    return list(dict.fromkeys(found))


@dataclass
class Resolved:
    """A version with its tags replaced: the body, its variables, the references resolved on the way (flattened,
    in order of appearance: `{"name", "version", "label"}`), who includes whom (version id → included versions) and
    the version each reference resolved to."""

    body: Any
    variables: list[str]
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    graph: dict[int, list[PromptVersion]] = field(default_factory=dict)
    found: dict[Reference, PromptVersion] = field(default_factory=dict)


class _Resolver:
    def __init__(self) -> None:
        self.found: dict[Reference, PromptVersion] = {}
        self.dependencies: dict[tuple[str, int, str], dict[str, Any]] = {}
        self.graph: dict[int, list[PromptVersion]] = {}
        self.resolved = 0

    def lookup(self, ref: Reference) -> PromptVersion:
        if ref in self.found:
            return self.found[ref]
        prompt = Prompt.objects.filter(name=ref.name).first()
        if prompt is None:
            raise CompositionError(f"{ref.tag}: there is no prompt named '{ref.name}'.")
        if prompt.is_retired:
            raise CompositionError(f"{ref.tag}: '{ref.name}' is retired.")
        if ref.number is not None:
            version = prompt.versions.filter(number=ref.number).first()
        else:
            version = prompt.label_version(ref.label)
        if version is None:
            missing = f"version {ref.number}" if ref.number is not None else f"label '{ref.label}'"
            raise CompositionError(f"{ref.tag}: '{ref.name}' has no {missing}.")
        if version.kind != PromptKind.TEXT:
            raise CompositionError(
                f"{ref.tag}: '{ref.name}' v{version.number} is a chat prompt; only text prompts can be included."
            )
        version.prompt = prompt
        self.found[ref] = version
        return version

    def include(self, ref: Reference, parent: PromptVersion | None, path: tuple[str, ...]) -> str:
        if ref.name in path:
            cycle = " → ".join((*path[path.index(ref.name) :], ref.name))
            raise CompositionError(f"{ref.tag}: a prompt cannot include itself ({cycle}).", code="reference_cycle")
        if len(path) > MAX_DEPTH:
            raise CompositionError(
                f"{ref.tag}: includes nest more than {MAX_DEPTH} deep ({' → '.join(path)} → {ref.name}).",
                code="reference_too_deep",
            )
        self.resolved += 1
        if self.resolved > MAX_INCLUDES:
            raise CompositionError(f"A prompt resolves at most {MAX_INCLUDES} includes.", code="reference_too_deep")
        version = self.lookup(ref)
        self.dependencies.setdefault(
            (ref.name, version.number, ref.label),
            {"name": ref.name, "version": version.number, "label": ref.label or None},
        )
        if parent is not None:
            self.graph.setdefault(parent.pk, []).append(version)
        text: str = self.fill(PromptKind.TEXT, version.body, version, (*path, ref.name))
        return text

    def fill(self, kind: str, body: Any, version: PromptVersion | None, path: tuple[str, ...]) -> Any:
        def text(value: str) -> str:
            if TAG_START not in value:
                return value
            return TAG_RE.sub(lambda m: self.include(parse_tag(m.group(1)), version, path), value)

        if kind == PromptKind.TEXT:
            return text(body)
        return [
            {**m, "content": text(m["content"])} if isinstance(m.get("content"), str) else m
            for m in body  # placeholders and messages alike; only content is text
        ]


def _has_tags(kind: str, body: Any) -> bool:
    return any(TAG_START in text for text in _texts(kind, body))


def resolve_body(name: str, kind: str, body: Any, version: PromptVersion | None = None) -> Resolved:
    """Resolve a template of prompt `name` as the registry stands now; CompositionError says what does not resolve."""
    if not _has_tags(kind, body):
        return Resolved(body, Template(kind, body).variables)
    resolver = _Resolver()
    resolved = resolver.fill(kind, body, version, (name,))
    dependencies = list(resolver.dependencies.values())
    return Resolved(resolved, Template(kind, resolved).variables, dependencies, resolver.graph, resolver.found)


def resolve_for_display(name: str, kind: str, body: Any) -> tuple[Any, list[dict[str, Any]], str]:
    """For a preview of a valid template: the body resolved as the registry stands now and its dependencies, or the
    body as written and why it does not resolve."""
    try:
        resolved = resolve_body(name, kind, body)
    except CompositionError as exc:
        return body, [], exc.message
    return resolved.body, resolved.dependencies, ""


def resolve(version: PromptVersion) -> Resolved:
    """What a fetch of `version` serves."""
    if not _has_tags(version.kind, version.body):  # no query, even for a version of a prompt not yet saved
        return Resolved(version.body, Template(version.kind, version.body).variables)
    return resolve_body(version.prompt.name, version.kind, version.body, version)


# --- Publishing and moving labels --------------------------------------------------------------


def check_body(name: str, kind: str, body: Any) -> list[Reference]:
    """Before a version is published: every tag must resolve, without cycles; returns its references."""
    refs = references(kind, body)
    if refs:
        resolve_body(name, kind, body)
    return refs


def included_first(items: list[tuple[str, str, Any]]) -> list[int]:
    """The positions of `(name, kind, body)` items, each after the items it includes, otherwise in their order (an
    import publishes a directory's prompts so; a cycle or a malformed tag keeps its place for publish to refuse)."""
    position = {name: i for i, (name, _, _) in enumerate(items)}
    order: list[int] = []
    state: dict[int, bool] = {}  # False while visiting, True once placed

    def visit(i: int) -> None:
        if i in state:
            return
        state[i] = False
        name, kind, body = items[i]
        try:
            included = [position[r.name] for r in references(kind, body) if r.name in position and r.name != name]
        except CompositionError:
            included = []
        for j in included:
            visit(j)
        state[i] = True
        order.append(i)

    for i in range(len(items)):
        visit(i)
    return order


def record_inclusions(version: PromptVersion, refs: Iterable[Reference]) -> None:
    Inclusion.objects.bulk_create(
        [Inclusion(version=version, name=r.name, label=r.label, number=r.number) for r in refs]
    )


def check_target(target: PromptVersion) -> None:
    """Before a label moves to `target`: its includes must resolve now, and never come back to its own prompt."""
    if _has_tags(target.kind, target.body):
        try:
            resolve(target)
        except CompositionError as exc:
            raise CompositionError(f"v{target.number} cannot take a label: {exc.message}", code=exc.code) from None


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
    if not _has_tags(target.kind, target.body):
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
