"""JSON every database backend can store; checked at each entry point that takes JSON or files."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

MAX_DEPTH = 64  # objects and lists inside each other; a real config or schema is a handful deep
MAX_INT = 2**63 - 1  # PostgreSQL's bigint, SQLite's integer: larger ones fail (or lose digits) in the database


def unstorable_text(value: Any, where: str = "body", depth: int = 0) -> str | None:
    """Where `value` holds something a database cannot store faithfully, else None.

    NUL characters and unpaired surrogates are valid JSON escapes, but PostgreSQL
    text and JSONB refuse `\\u0000` and no database can encode a lone surrogate.
    Python's JSON parser also takes `NaN`, `Infinity`, `1e400` and integers of
    any length, which JSONB, SQLite's JSON check and our own JSON output refuse.
    Without this check each of them is a 500 somewhere downstream.
    """
    if isinstance(value, str):
        if "\x00" in value:
            return f"{where} contains a NUL character (\\u0000)"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{where} contains an unpaired UTF-16 surrogate"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} is {value}: send a finite number (JSON has no NaN or Infinity)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        return f"{where} is an integer out of range (at most {MAX_INT} in absolute value)"
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    if depth >= MAX_DEPTH:
        return f"{where} is nested too deeply (at most {MAX_DEPTH} levels)"
    for key, item in items:
        problem = unstorable_text(key, f"{where} key") or unstorable_text(item, f"{where}.{key}", depth + 1)
        if problem:
            return problem
    return None


def parse_json(raw: bytes | str, where: str = "body") -> Any:
    """A request body as JSON that can be stored; a ValueError names what and where it is not."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ValueError(f"{where} is nested too deeply (at most {MAX_DEPTH} levels)") from None
    problem = unstorable_text(data, where)
    if problem:
        raise ValueError(problem)
    return data
