"""Path converters for prompt names, which may contain `/` (folders: `billing/refund-extraction`)."""

from __future__ import annotations

from django.urls import register_converter

NAME_PATTERN = r"[a-z0-9]+(?:-[a-z0-9]+)*(?:/[a-z0-9]+(?:-[a-z0-9]+)*)*"


class PromptNameConverter:
    regex = NAME_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class ServedNameConverter(PromptNameConverter):
    """A prompt name in the fetch URL: never one that ends like a write endpoint
    (`…/versions`, `…/rollback`, `…/monitor`, `…/labels/<label>`), so those reach the API's routes."""

    regex = r"(?!(?:[a-z0-9-]+/)*labels/[a-z0-9-]+$)" + NAME_PATTERN + r"(?<!/versions)(?<!/rollback)(?<!/monitor)"


register_converter(PromptNameConverter, "promptname")
register_converter(ServedNameConverter, "servedname")
