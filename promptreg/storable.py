"""Text every database backend can store; checked at each entry point that takes JSON or files."""

from __future__ import annotations

from typing import Any


def unstorable_text(value: Any, where: str = "body") -> str | None:
    """Where `value` holds a NUL character or an unpaired surrogate, else None.

    Both are valid JSON escapes, but PostgreSQL text and JSONB refuse `\\u0000`
    and no database can encode a lone surrogate: without this check they are a 500.
    """
    if isinstance(value, str):
        if "\x00" in value:
            return f"{where} contains a NUL character (\\u0000)"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{where} contains an unpaired UTF-16 surrogate"
        return None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        problem = unstorable_text(key, f"{where} key") or unstorable_text(item, f"{where}.{key}")
        if problem:
            return problem
    return None
