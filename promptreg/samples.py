"""Sample values on the authoring form: one field per detected variable, a message list per chat
placeholder, and JSON only as an advanced option.

Fields are posted as `sample-<variable>` (text) and `sample-<placeholder>-<i>-role` / `-content`
(a placeholder's messages, in `i` order). Variable names never contain '-', so the names parse back
unambiguously. The form and the live preview read samples through `samples_from_post`, so both agree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from promptreg.exceptions import json_problem
from promptreg.storable import parse_json
from promptreg.templating import Template

FIELD_RE = re.compile(r"^sample-([A-Za-z_][A-Za-z0-9_]*)(?:-(\d+)-(role|content))?$")
AS_JSON = "samples_as_json"


@dataclass
class SampleField:
    name: str
    is_list: bool
    value: str = ""
    messages: list[dict[str, str]] = field(default_factory=list)


def json_error(text: str) -> tuple[dict[str, Any], str]:
    """The sample values typed as JSON, or ({}, a plain sentence saying what is wrong and where)."""
    text = (text or "").strip()
    if not text:
        return {}, ""
    try:
        parsed = parse_json(text, "Sample values")
    except json.JSONDecodeError as exc:
        return {}, json_problem("Sample values", exc)
    except ValueError as exc:  # storable as JSON only: no NaN, no Infinity, no absurd nesting
        return {}, f"{exc}."
    if not isinstance(parsed, dict):
        return {}, 'The sample values must be a JSON object with one entry per variable, like {"customer_name": "Ada"}.'
    return parsed, ""


def from_fields(data) -> dict[str, Any]:
    """Values of the posted sample fields; empty ones are left out (the preview shows them as missing)."""
    values: dict[str, Any] = {}
    rows: dict[str, dict[int, dict[str, str]]] = {}
    for key in data:
        match = FIELD_RE.match(key)
        if not match:
            continue
        name, index, part = match.groups()
        if index is None:
            if data[key] != "":
                values[name] = data[key]
        else:
            rows.setdefault(name, {}).setdefault(int(index), {})[part] = data[key]
    for name, by_index in rows.items():
        messages = [
            {"role": row.get("role") or "user", "content": row.get("content", "")}
            for _, row in sorted(by_index.items())
            if row.get("content", "").strip()
        ]
        values[name] = messages
    return values


def samples_from_post(data) -> tuple[dict[str, Any], str]:
    """(sample values, error sentence) from a posted authoring form: the JSON box when 'as JSON' is ticked, else the
    fields."""
    if data.get(AS_JSON):
        return json_error(data.get("sample_values", ""))
    return from_fields(data), ""


def fields_for(template: Template, values: dict[str, Any]) -> list[SampleField]:
    """One field per variable of a valid template, filled from `values`."""
    if template.problems():
        return []
    placeholders = set(template.placeholders)
    result = []
    for name in template.variables:
        value = values.get(name)
        if name in placeholders:
            messages = [
                {"role": str(m.get("role", "user")), "content": str(m.get("content", ""))}
                for m in (value if isinstance(value, list) else [])
                if isinstance(m, dict)
            ]
            result.append(SampleField(name, True, messages=messages))
        else:
            text = "" if value is None else (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
            result.append(SampleField(name, False, value=text))
    return result


def fields_key(template: Template) -> str:
    """Which fields the form shows: re-rendered only when this changes, so typing in a field keeps its focus."""
    if template.problems():
        return ""
    placeholders = set(template.placeholders)
    return ",".join(f"{n}:{'list' if n in placeholders else 'text'}" for n in template.variables)


def as_json(values: dict[str, Any]) -> str:
    return json.dumps(values, indent=2, ensure_ascii=False) if values else ""
