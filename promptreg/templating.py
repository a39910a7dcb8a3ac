"""The prompt template language: `{{ variable }}` placeholders and nothing else.

Same syntax as Langfuse, so prompts move over unchanged. There is no logic, no
attribute access and no evaluation: compiling is a single regex substitution,
so a value that itself contains `{{ x }}` is inserted literally and user text
can never run as code. Single braces (JSON examples) are plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MAX_BODY_CHARS = 200_000  # a version's text, and what its includes resolve to
VARIABLE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Any `{{ ... }}` on one line, to report the ones that are not plain variables.
OPENING_RE = re.compile(r"\{\{")
PLACEHOLDER_SHAPE = "takes a list of messages with 'role' and 'content'"
MESSAGE_ROLES = ("system", "user", "assistant", "tool", "developer")


class TemplateError(ValueError):
    """A template that cannot be saved: each problem says where it is."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class CompileError(ValueError):
    """Compiling failed, typically because variables are missing."""

    def __init__(self, message: str, missing: list[str] | None = None):
        self.missing = missing or []
        super().__init__(message)


def normalize_newlines(value: Any) -> Any:
    """`\r\n` and lone `\r` become `\n` in a text body, in each chat message's content, and in any string.

    Browsers send textarea text with `\r\n`; stored as is, every diff shows line breaks that nobody changed.
    """
    if isinstance(value, str):
        return value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value
    if isinstance(value, list):
        return [normalize_newlines(item) for item in value]
    if isinstance(value, dict):
        return {key: normalize_newlines(item) for key, item in value.items()}
    return value


@dataclass
class Compiled:
    prompt: str | list[dict[str, Any]]
    unused: list[str] = field(default_factory=list)


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


def text_problems(text: str, where: str = "") -> list[str]:
    """Report every `{{` that does not open a well-formed `{{ identifier }}`."""
    problems = []
    prefix = f"{where}: " if where else ""
    pos = 0
    while True:
        match = OPENING_RE.search(text, pos)
        if match is None:
            break
        start = match.start()
        variable = VARIABLE_RE.match(text, start)
        if variable:
            pos = variable.end()
            continue
        line, col = _line_col(text, start)
        close = text.find("}}", start + 2)
        newline = text.find("\n", start)
        if close == -1 or (newline != -1 and newline < close):
            problems.append(f"{prefix}line {line}, column {col}: '{{{{' is never closed with '}}}}'")
        else:
            inner = text[start + 2 : close].strip()
            problems.append(
                f"{prefix}line {line}, column {col}: '{{{{ {inner} }}}}' is not a variable name "
                "(use letters, digits and underscores only; no expressions, filters or attribute access)"
            )
        pos = start + 2
    return problems


def text_variables(text: str) -> list[str]:
    """Variable names in order of first appearance."""
    return list(dict.fromkeys(VARIABLE_RE.findall(text)))


def _substitute(text: str, values: dict[str, Any]) -> str:
    return VARIABLE_RE.sub(lambda m: _as_text(values[m.group(1)]), text)


def _as_text(value: str | int | float | bool) -> str:
    """A text variable's value as it goes in: numbers and true/false written as JSON writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return "an object" if isinstance(value, dict) else "a list" if isinstance(value, list) else type(value).__name__


def text_value_problem(name: str, value: Any) -> str | None:
    """The one rule for a text variable's value (runs, evaluation cases, sample values): text, a number or
    true/false; never null, an object or a list, whose Python spelling would reach the model."""
    if isinstance(value, (str, int, float)):  # bool is an int
        return None
    return f"variable '{name}' must be text, a number or true/false, not {_json_kind(value)}"


def case_value_problem(name: str, value: Any) -> str | None:
    """A value stored for a template not yet known (an evaluation case): a text value, or a chat placeholder's
    messages."""
    if isinstance(value, list):
        return None if _is_message_list(value) else f"placeholder '{name}' {PLACEHOLDER_SHAPE}"
    return text_value_problem(name, value)


def chat_problems(messages: Any) -> list[str]:
    """Structure and placeholder problems of a chat template."""
    if not isinstance(messages, list) or not messages:
        return ["a chat prompt is a non-empty list of messages"]
    problems = []
    for i, message in enumerate(messages, start=1):
        where = f"message {i}"
        if not isinstance(message, dict):
            problems.append(f"{where}: must be an object with 'role' and 'content', or a placeholder")
            continue
        if message.get("type") == "placeholder":
            name = message.get("name")
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                problems.append(f"{where}: a placeholder needs a 'name' made of letters, digits and underscores")
            continue
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not role.strip():
            problems.append(f"{where}: 'role' is required")
        if not isinstance(content, str):
            problems.append(f"{where}: 'content' must be text")
            continue
        problems.extend(text_problems(content, where))
    return problems


@dataclass(frozen=True)
class Template:
    """A prompt body: `kind` "text" with a string, or "chat" with a message list."""

    kind: str
    body: Any

    def problems(self) -> list[str]:
        if self.kind == "text":
            if not isinstance(self.body, str):
                return ["a text prompt must be a string"]
            return text_problems(self.body)
        if self.kind == "chat":
            return chat_problems(self.body)
        return [f"unknown prompt kind {self.kind!r} (expected 'text' or 'chat')"]

    def validate(self) -> None:
        problems = self.problems()
        if problems:
            raise TemplateError(problems)

    @property
    def placeholders(self) -> list[str]:
        if self.kind != "chat":
            return []
        return list(dict.fromkeys(m["name"] for m in self.body if m.get("type") == "placeholder"))

    @property
    def text_variables(self) -> list[str]:
        if self.kind == "text":
            return text_variables(self.body)
        names: list[str] = []
        for message in self.body:
            if message.get("type") != "placeholder":
                names.extend(text_variables(message.get("content", "")))
        return list(dict.fromkeys(names))

    @property
    def variables(self) -> list[str]:
        """Every input the template takes: text variables, then chat placeholders."""
        return list(dict.fromkeys(self.text_variables + self.placeholders))

    def compile(self, **values: Any) -> Compiled:
        """Fill in every variable; missing ones raise CompileError naming them all."""
        missing = [name for name in self.variables if name not in values]
        if missing:
            raise CompileError("missing variables: " + ", ".join(missing), missing)
        unused = [name for name in values if name not in self.variables]
        for name in self.text_variables:
            problem = text_value_problem(name, values[name])
            if problem:
                raise CompileError(problem)
        if self.kind == "text":
            return Compiled(_substitute(self.body, values), unused)
        compiled: list[dict[str, Any]] = []
        for message in self.body:
            if message.get("type") == "placeholder":
                compiled.extend(_placeholder_messages(message["name"], values[message["name"]]))
            else:
                compiled.append({**message, "content": _substitute(message["content"], values)})
        return Compiled(compiled, unused)


def _is_message_list(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
    )


def _placeholder_messages(name: str, value: Any) -> list[dict[str, Any]]:
    if not _is_message_list(value):
        raise CompileError(f"placeholder '{name}' {PLACEHOLDER_SHAPE}")
    return [{"role": m["role"], "content": m["content"]} for m in value]
