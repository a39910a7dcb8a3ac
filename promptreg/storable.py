"""JSON every database backend can store; checked at each entry point that takes JSON or files."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from typing import Any

MAX_DEPTH = 64  # objects and lists inside each other; a real config or schema is a handful deep
_MAX_FLOAT = sys.float_info.max  # finite: NaN and ±inf fail the comparison
MAX_INT = 2**63 - 1  # PostgreSQL's bigint, SQLite's integer: larger ones fail (or lose digits) in the database


def unstorable_text(value: Any, where: str = "body", depth: int = 0) -> str | None:
    """Where `value` holds something a database cannot store faithfully, else None.

    NUL characters and unpaired surrogates are valid JSON escapes, but PostgreSQL
    text and JSONB refuse `\\u0000` and no database can encode a lone surrogate.
    Python's JSON parser also takes `NaN`, `Infinity`, `1e400` and integers of
    any length, which JSONB, SQLite's JSON check and our own JSON output refuse.
    Without this check each of them is a 500 somewhere downstream.
    """
    found = _find(value, depth)
    if found is None:
        return None
    path, problem = found
    return where + "".join(reversed(path)) + problem


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, str):
        if "\x00" in value:
            return " contains a NUL character (\\u0000)"
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return " contains an unpaired UTF-16 surrogate"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f" is {value}: send a finite number (JSON has no NaN or Infinity)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        return f" is an integer out of range (at most {MAX_INT} in absolute value)"
    return None


def _find(value: Any, depth: int) -> tuple[list[str], str] | None:
    """(path from the problem up to `value`, what is wrong), or None. The path is only
    built for a problem: a request body has thousands of values and almost never one."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        problem = _scalar_problem(value)
        return ([], problem) if problem else None
    if depth >= MAX_DEPTH:
        return [], f" is nested too deeply (at most {MAX_DEPTH} levels)"
    for key, item in items:
        # Plain ASCII text and ordinary numbers, most of a body, are passed over without a call.
        if not (type(key) is str and key.isascii() and "\x00" not in key):
            problem = _scalar_problem(key)
            if problem:
                return [" key"], problem
        kind = type(item)
        if (
            kind is str
            and item.isascii()
            and "\x00" not in item
            or kind is float
            and -_MAX_FLOAT <= item <= _MAX_FLOAT
            or kind is int
            and -MAX_INT <= item <= MAX_INT
        ):
            continue
        found = _find(item, depth + 1)
        if found:
            found[0].append(f".{key}")
            return found
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
