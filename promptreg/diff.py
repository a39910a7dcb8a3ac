"""Word-level diffs between two versions: text, each chat message, and the config.

Rendered both side by side and inline from the same segments. Variables added
or removed are breaking changes: app servers must send a different set.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from promptreg.models import PromptVersion

TOKEN_RE = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass
class Segment:
    op: str  # "equal" | "insert" | "delete"
    text: str


@dataclass
class TextDiff:
    title: str
    inline: list[Segment]
    changed: bool

    @property
    def left(self) -> list[Segment]:
        return [s for s in self.inline if s.op != "insert"]

    @property
    def right(self) -> list[Segment]:
        return [s for s in self.inline if s.op != "delete"]


@dataclass
class ConfigChange:
    key: str
    op: str  # "added" | "removed" | "changed"
    old: str = ""
    new: str = ""


@dataclass
class VersionDiff:
    old: PromptVersion
    new: PromptVersion
    parts: list[TextDiff]
    config: list[ConfigChange]
    variables_added: list[str] = field(default_factory=list)
    variables_removed: list[str] = field(default_factory=list)

    @property
    def breaking(self) -> bool:
        return bool(self.variables_added or self.variables_removed)

    @property
    def changed(self) -> bool:
        return any(p.changed for p in self.parts) or bool(self.config)


def word_diff(old: str, new: str) -> list[Segment]:
    """Diff on words and whitespace runs, merging neighbouring tokens of the same kind."""
    a, b = TOKEN_RE.findall(old), TOKEN_RE.findall(new)
    segments: list[Segment] = []

    def add(op: str, tokens: list[str]) -> None:
        text = "".join(tokens)
        if not text:
            return
        if segments and segments[-1].op == op:
            segments[-1].text += text
        else:
            segments.append(Segment(op, text))

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            add("equal", a[i1:i2])
        else:
            add("delete", a[i1:i2])
            add("insert", b[j1:j2])
    return segments


def _text_part(title: str, old: str, new: str) -> TextDiff:
    return TextDiff(title, word_diff(old, new), old != new)


def _message_text(message: dict[str, Any]) -> tuple[str, str]:
    if message.get("type") == "placeholder":
        return "placeholder", f"{{{{ {message.get('name', '')} }}}} (placeholder: a list of messages)"
    return str(message.get("role", "")), str(message.get("content", ""))


def _messages(version: PromptVersion) -> list[tuple[str, str]]:
    if version.kind == "chat":
        return [_message_text(m) for m in version.body]
    return [("text", version.body)]


def _body_parts(old: PromptVersion, new: PromptVersion) -> list[TextDiff]:
    if old.kind == "text" and new.kind == "text":
        return [_text_part("Prompt text", old.body, new.body)]
    a, b = _messages(old), _messages(new)
    parts = []
    for i in range(max(len(a), len(b))):
        role_a, text_a = a[i] if i < len(a) else ("", "")
        role_b, text_b = b[i] if i < len(b) else ("", "")
        if i >= len(a):
            title = f"Message {i + 1} ({role_b}): added"
        elif i >= len(b):
            title = f"Message {i + 1} ({role_a}): removed"
        elif role_a != role_b:
            title = f"Message {i + 1}: role {role_a} → {role_b}"
        else:
            title = f"Message {i + 1} ({role_b})"
        part = _text_part(title, text_a, text_b)
        part.changed = part.changed or role_a != role_b
        parts.append(part)
    return parts


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def config_changes(old: dict, new: dict) -> list[ConfigChange]:
    changes = []
    for key in sorted(set(old) | set(new)):
        if key not in new:
            changes.append(ConfigChange(key, "removed", old=_show(old[key])))
        elif key not in old:
            changes.append(ConfigChange(key, "added", new=_show(new[key])))
        elif old[key] != new[key]:
            changes.append(ConfigChange(key, "changed", old=_show(old[key]), new=_show(new[key])))
    return changes


def version_diff(old: PromptVersion, new: PromptVersion) -> VersionDiff:
    old_vars, new_vars = list(old.variables), list(new.variables)
    return VersionDiff(
        old=old,
        new=new,
        parts=_body_parts(old, new),
        config=config_changes(old.config or {}, new.config or {}),
        variables_added=[v for v in new_vars if v not in old_vars],
        variables_removed=[v for v in old_vars if v not in new_vars],
    )
