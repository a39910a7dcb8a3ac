"""The prompt-name path converters, built from `models.NAME_RE` and registered once (`PromptregConfig.ready`).

Prompt names may contain `/` (folders: `billing/refund-extraction`), so a name is never a single segment.
"""

from __future__ import annotations

from django.urls import register_converter

from promptreg.models import NAME_RE, RESERVED_SEGMENTS

NAME_PATTERN = NAME_RE.pattern.removeprefix("^").removesuffix("$")


class PromptNameConverter:
    regex = NAME_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class ServedNameConverter(PromptNameConverter):
    """A prompt name in the fetch URL: never one that ends like a write endpoint
    (`…/versions`, `…/rollback`, `…/monitor`, `…/labels/<label>`), so those reach the API's routes."""

    regex = (
        r"(?!(?:[a-z0-9-]+/)*labels/[a-z0-9-]+$)"
        + NAME_PATTERN
        + "".join(f"(?<!/{segment})" for segment in sorted(RESERVED_SEGMENTS - {"labels"}))
    )


def register() -> None:
    register_converter(PromptNameConverter, "prompt")
    register_converter(ServedNameConverter, "servedname")
