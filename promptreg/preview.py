"""The compiled preview the dashboard shows: a template filled with sample values.

Unlike `Template.compile`, a missing sample value is not an error here: the
variable stays visible as `{{ name }}` and is listed, so a half-written draft
still previews.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from promptreg import composition
from promptreg.templating import CompileError, Template


@dataclass
class Preview:
    prompt: str | list[dict[str, Any]] | None
    variables: list[str]
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    dependencies: list[dict[str, Any]] = field(default_factory=list)  # the prompts it includes, resolved
    include_problem: str = ""  # why an include does not resolve (then the text is shown as written)

    @property
    def is_chat(self) -> bool:
        return isinstance(self.prompt, list)


def build_preview(kind: str, body: Any, sample_values: dict[str, Any] | None, name: str = "") -> Preview:
    """`name` is the prompt's, if known: an include of itself is then reported too."""
    template = Template(kind, body)
    problems = template.problems()
    if problems:
        return Preview(prompt=None, variables=[], problems=problems)
    resolved, dependencies, include_problem = composition.resolve_for_display(name, kind, body)
    template = Template(kind, resolved)
    values = dict(sample_values or {})
    variables = template.variables
    missing = [v for v in variables if v not in values or values[v] in ("", None)]
    filled = {**values}
    for name in missing:
        filled[name] = [] if name in template.placeholders else "{{ %s }}" % name  # noqa: UP031 — the text has braces of its own
    try:
        compiled = template.compile(**filled)
    except CompileError as exc:  # a placeholder sample that is not a list of messages
        return Preview(prompt=None, variables=variables, missing=missing, problems=[str(exc)])
    return Preview(
        prompt=compiled.prompt,
        variables=variables,
        missing=missing,
        unused=compiled.unused,
        dependencies=dependencies,
        include_problem=include_problem,
    )
