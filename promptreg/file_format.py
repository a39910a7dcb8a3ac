"""The prompt file format, and reading and validating prompt files with each problem's file and line.

A text prompt is `{name}.txt`: a header of `KEY: value` lines (a value continues
on lines indented by two spaces), a `---` line, then the body exactly as stored.
A chat prompt is `{name}.json`: one object with the same header keys and a
`messages` list. Folders in a name (`billing/refund-extraction`) are folders on
disk. The header holds PROMPT, VERSION, PURPOSE, LAST_CHANGED, CHANGED_BY,
REASON, KNOWN_EDGE_CASES and EVAL_SCORE, plus PROMPT_TYPE and CONFIG, which a
version needs too. Writing and importing files is `promptreg.files`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError

from promptreg.exceptions import InvalidInput
from promptreg.models import PromptKind, PromptType, PromptVersion, validate_prompt_name
from promptreg.services import validate_content
from promptreg.storable import parse_json
from promptreg.templating import chat_problems, text_problems

HEADER_KEYS = (
    "PROMPT",
    "VERSION",
    "PURPOSE",
    "LAST_CHANGED",
    "CHANGED_BY",
    "REASON",
    "KNOWN_EDGE_CASES",
    "EVAL_SCORE",
    "PROMPT_TYPE",
    "CONFIG",
)
SEPARATOR = "---"
CONTINUATION = "  "
EXTENSIONS = {".txt": PromptKind.TEXT, ".json": PromptKind.CHAT}
HEADER_LINE_RE = re.compile(r"^([A-Z_]+):(?: (.*))?$")
LINE_RE = re.compile(r"^line (\d+), (.*)$", re.S)  # how templating reports a problem's position


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class FileErrors(Exception):
    """Problems found in a directory of prompt files; nothing was imported."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))


@dataclass
class PromptFile:
    path: str
    name: str
    kind: str
    body: Any
    config: dict
    header: dict[str, str]

    @property
    def content_hash(self) -> str:
        return PromptVersion.hash_content(self.kind, self.body, self.config)


def leaves_directory(directory: Path, path: Path) -> Problem | None:
    """A problem if `path` (through a symlink, itself or a folder on the way) leads outside `directory`."""
    target = path.resolve()
    if target.is_relative_to(directory.resolve()):
        return None
    return Problem(
        path.relative_to(directory).as_posix(), 0, f"is a symlink that leads outside {directory} (to {target}); refused"
    )


def _name_from_path(relative: Path) -> str:
    return "/".join(relative.with_suffix("").parts)


def _parse_text(path: str, text: str) -> tuple[dict[str, str], dict[str, int], str, int]:
    """Header values, the line of each key, the body, and the number of lines before the body."""
    lines = text.split("\n")
    if not HEADER_LINE_RE.match(lines[0]) or not lines[0].startswith("PROMPT:"):
        raise FileErrors(
            [
                Problem(
                    path,
                    1,
                    "no metadata header: the file must start with 'PROMPT: <name>', and the header ends with a '---' "
                    "line",
                )
            ]
        )
    header: dict[str, list[str]] = {}
    where: dict[str, int] = {}
    problems: list[Problem] = []
    key = ""
    for number, line in enumerate(lines, start=1):
        if line == SEPARATOR:
            if problems:
                raise FileErrors(problems)
            body = "\n".join(lines[number:])
            body = body[:-1] if body.endswith("\n") else body
            return {k: "\n".join(v).strip() for k, v in header.items()}, where, body, number
        match = HEADER_LINE_RE.match(line)
        if match:
            key = match[1]
            if key not in HEADER_KEYS:
                problems.append(
                    Problem(path, number, f"unknown header key {key!r} (expected {', '.join(HEADER_KEYS)})")
                )
            elif key in header:
                problems.append(Problem(path, number, f"{key} appears twice"))
            header[key], where[key] = [match[2] or ""], number
        elif line.startswith(CONTINUATION) or not line.strip():
            header[key].append(line[len(CONTINUATION) :])
        else:
            problems.append(
                Problem(
                    path,
                    number,
                    f"not a header line: {line[:60]!r} (continue a value with two spaces of indent; end the header "
                    f"with '---')",
                )
            )
    raise FileErrors(
        problems
        + [Problem(path, len(lines), "the metadata header never ends: add a '---' line before the prompt text")]
    )


def _message_lines(text: str) -> list[int]:
    """The line on which each element of the `messages` list starts (json gives no positions)."""
    match = re.search(r'"messages"\s*:\s*\[', text)
    if match is None:
        return []
    decoder, pos = json.JSONDecoder(), match.end()
    lines: list[int] = []
    try:
        while True:
            while text[pos] in " \t\r\n,":
                pos += 1
            if text[pos] == "]":
                return lines
            lines.append(text.count("\n", 0, pos) + 1)
            _, pos = decoder.raw_decode(text, pos)
    except (ValueError, IndexError):
        return lines


def _key_line(text: str, key: str) -> int:
    index = text.find(f'"{key}"')
    return text.count("\n", 0, index) + 1 if index >= 0 else 1


def _located(problem: str) -> re.Match[str]:
    """A template problem's "line N: …" parts."""
    found = LINE_RE.match(problem)
    assert found is not None, "every template problem starts with its line"
    return found


def _read_chat(path: str, text: str) -> tuple[dict[str, Any], Any, Any, list[Problem]]:
    try:
        data = parse_json(text, "the file")
    except json.JSONDecodeError as exc:
        raise FileErrors([Problem(path, exc.lineno, f"not valid JSON: {exc.msg}")]) from None
    except ValueError as exc:
        raise FileErrors([Problem(path, 1, f"{exc}, which the database cannot store")]) from None
    if not isinstance(data, dict) or "PROMPT" not in data:
        raise FileErrors(
            [
                Problem(
                    path,
                    1,
                    "no metadata header: a chat file is a JSON object with the header keys (PROMPT, VERSION, …) and a "
                    "'messages' list",
                )
            ]
        )
    problems = [
        Problem(path, _key_line(text, k), f"unknown header key {k!r}")
        for k in data
        if k not in HEADER_KEYS and k != "messages"
    ]
    messages = data.get("messages")
    if not isinstance(messages, list):
        problems.append(
            Problem(
                path,
                _key_line(text, "messages"),
                "a chat file needs 'messages': a list of {role, content} messages and {type: placeholder, name} slots",
            )
        )
    else:
        starts = _message_lines(text)
        for problem in chat_problems(messages):
            index = re.match(r"message (\d+)", problem)
            line = starts[int(index[1]) - 1] if index and int(index[1]) <= len(starts) else _key_line(text, "messages")
            problems.append(Problem(path, line, problem))
    header = {
        k: "" if v is None else (v if isinstance(v, (str, dict)) else json.dumps(v))
        for k, v in data.items()
        if k in HEADER_KEYS
    }
    return header, data.get("CONFIG"), messages, problems


def read_file(directory: Path, path: Path) -> PromptFile:
    """Parse and validate one file; raises FileErrors naming the file and line of every problem."""
    relative = path.relative_to(directory)
    shown = relative.as_posix()
    name = _name_from_path(relative)
    kind = EXTENSIONS[path.suffix]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FileErrors([Problem(shown, 1, "not UTF-8 text")]) from None
    if "\x00" in text:
        raise FileErrors(
            [
                Problem(
                    shown,
                    text.count("\n", 0, text.index("\x00")) + 1,
                    "contains a NUL character, which the database cannot store",
                )
            ]
        )
    if kind == PromptKind.CHAT:
        header, config, body, problems = _read_chat(shown, text)
        where = {k: _key_line(text, k) for k in header}
    else:
        header, where, body, offset = _parse_text(shown, text)
        config = header.get("CONFIG") or None
        # Pad with the header's lines so template problems carry file line numbers.
        problems = [Problem(shown, int(m[1]), m[2]) for m in (_located(p) for p in text_problems("\n" * offset + body))]
        if isinstance(config, str):
            try:
                config = parse_json(config, "CONFIG")
            except json.JSONDecodeError:
                problems.append(Problem(shown, where["CONFIG"], "CONFIG is not valid JSON"))
            except ValueError as exc:
                problems.append(Problem(shown, where["CONFIG"], str(exc)))
    config = {} if config in (None, "") else config
    if not isinstance(config, dict):
        problems.append(
            Problem(shown, where.get("CONFIG", 1), 'CONFIG must be a JSON object, like {"model": "gpt-4o"}')
        )
    if header.get("PROMPT") != name:
        problems.append(
            Problem(
                shown,
                where.get("PROMPT", 1),
                f"PROMPT says {header.get('PROMPT')!r} but the file is named for {name!r}",
            )
        )
    try:
        validate_prompt_name(name)
    except ValidationError as exc:
        problems.append(Problem(shown, 1, exc.messages[0]))
    prompt_type = header.get("PROMPT_TYPE", "")
    if prompt_type and prompt_type not in PromptType.values:
        problems.append(
            Problem(shown, where["PROMPT_TYPE"], f"PROMPT_TYPE must be one of {', '.join(PromptType.values)}")
        )
    if not problems:
        try:
            validate_content(kind, body, config)
        except InvalidInput as exc:
            problems.append(Problem(shown, 1, exc.message))
    if problems:
        raise FileErrors(problems)
    return PromptFile(path=shown, name=name, kind=kind, body=body, config=config, header=header)


def read_dir(directory: Path) -> list[PromptFile]:
    """Every `.txt` and `.json` file under `directory` (hidden folders skipped), or FileErrors for all problems."""
    if not directory.is_dir():
        raise FileErrors([Problem(str(directory), 0, "not a directory")])
    files: list[PromptFile] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for path in sorted(p for p in directory.rglob("*") if p.suffix in EXTENSIONS and p.is_file()):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        outside = leaves_directory(directory, path)
        if outside:
            problems.append(outside)
            continue
        name = _name_from_path(relative)
        if name in seen:
            problems.append(Problem(relative.as_posix(), 1, f"'{name}' also has a file {seen[name]}; keep one"))
            continue
        seen[name] = relative.as_posix()
        try:
            files.append(read_file(directory, path))
        except FileErrors as exc:
            problems.extend(exc.problems)
    if problems:
        raise FileErrors(problems)
    return files
