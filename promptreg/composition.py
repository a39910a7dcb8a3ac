"""Prompt composition: a prompt includes another by reference, in Langfuse's tag syntax, so Langfuse prompts import
unchanged:

    @@@langfusePrompt:name=NAME|label=production@@@     whatever NAME's production label points at, at fetch time
    @@@langfusePrompt:name=NAME|version=3@@@            NAME v3, always

Read as Langfuse reads them: `name=` first, then one `label=` or `version=`, split at `|` and `=` with nothing
trimmed (a tag Langfuse would not resolve is refused here, saying why, rather than served as text).

Resolved at fetch, recursively (as Langfuse does): the tag is replaced by the included version's text, itself
resolved. Only text prompts can be included; a chat prompt includes them in its messages' content. The included
text's `{{ variables }}` become variables of the result, which is held to a version's size limit while it is built.
Publishing refuses a tag that does not resolve, a prompt that would include itself (directly or through others: by
name, whatever the labels) and nesting deeper than `MAX_DEPTH`; a label move refuses a version whose includes do not
resolve or come back to its own prompt.

Every tag is indexed at publish (`Inclusion`); what that index serves (dependents, the gates and audit records of a
label move) is `promptreg.composition_moves`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from promptreg.exceptions import InvalidInput
from promptreg.models import LABEL_RE, LATEST, Inclusion, Prompt, PromptKind, PromptVersion
from promptreg.templating import MAX_BODY_CHARS, Template

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
    """`name=x|label=production` (or `|version=3`) → a Reference, read exactly as Langfuse reads it (`name=` first,
    two fields, nothing trimmed); anything else is refused, saying why."""
    tag = f"'{TAG_START}{inner}@@@'"
    parts = [part.partition("=") for part in inner.split("|")]
    if any(part != part.strip() for part in inner.replace("=", "|").split("|")):
        raise CompositionError(
            f"{tag} has spaces around its fields; Langfuse reads the tag exactly, so write it "
            f"with none: '{TAG_START}name=NAME|label=LABEL@@@'."
        )
    if len(parts) != 2 or parts[0][0] != "name" or parts[1][0] not in ("label", "version"):
        raise CompositionError(
            f"{tag} is not a prompt reference: write '{TAG_START}name=NAME|label=LABEL@@@' or "
            f"'{TAG_START}name=NAME|version=N@@@' (name first, then exactly one of label= or version=)."
        )
    (_, _, name), (key, _, value) = parts
    if not name or not value:
        raise CompositionError(f"{tag} needs a name and a {key}.")
    if key == "version":
        if not value.isdigit() or int(value) < 1:
            raise CompositionError(f"{tag}: version must be a positive whole number.")
        return Reference(name, number=int(value))
    if value != LATEST and not LABEL_RE.match(value):
        raise CompositionError(f"{tag}: '{value}' is not a label name.")
    return Reference(name, label=value)


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
        """`body` with its tags resolved; a chat body's contents count together towards the size limit."""
        used = 0

        def text(value: str) -> str:
            nonlocal used
            if TAG_START not in value:
                used += len(value)
                return value
            pieces, end = [], 0
            for match in TAG_RE.finditer(value):  # built piece by piece, to stop as soon as it is too long
                ref = parse_tag(match.group(1))
                pieces += [value[end : match.start()], self.include(ref, version, path)]
                used += len(pieces[-2]) + len(pieces[-1])
                end = match.end()
                if used > MAX_BODY_CHARS:
                    raise CompositionError(
                        f"{ref.tag}: resolved, '{path[0]}' would be over {MAX_BODY_CHARS:,} characters, the limit of "
                        "a version's text; include less.",
                        code="template_too_long",
                    )
            used += len(value) - end
            return "".join([*pieces, value[end:]])

        if kind == PromptKind.TEXT:
            return text(body)
        return [
            {**m, "content": text(m["content"])} if isinstance(m.get("content"), str) else m
            for m in body  # placeholders and messages alike; only content is text
        ]


def has_tags(kind: str, body: Any) -> bool:
    return any(TAG_START in text for text in _texts(kind, body))


def resolve_body(name: str, kind: str, body: Any, version: PromptVersion | None = None) -> Resolved:
    """Resolve a template of prompt `name` as the registry stands now; CompositionError says what does not resolve."""
    if not has_tags(kind, body):
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
    if not has_tags(version.kind, version.body):  # no query, even for a version of a prompt not yet saved
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
    if has_tags(target.kind, target.body):
        try:
            resolve(target)
        except CompositionError as exc:
            raise CompositionError(f"v{target.number} cannot take a label: {exc.message}", code=exc.code) from None
