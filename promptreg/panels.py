"""Extra panels on the version page and the prompt page, registered by apps above the registry.

The evaluation app shows its score diff here without the registry importing it:

    register_version_panel("experiments/version_scores.html", scores_context)
    register_prompt_panel("experiments/prompt_dataset.html", dataset_context)

Each panel's template is included with the dict its context function returns
(plus `version` or `prompt`, and `request`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from promptreg.models import Prompt, PromptVersion

PanelContext = Callable[[Any, HttpRequest], dict[str, Any]]


@dataclass(frozen=True)
class Panel:
    template_name: str
    context: PanelContext


_version_panels: dict[str, Panel] = {}
_prompt_panels: dict[str, Panel] = {}


def register_version_panel(template_name: str, context: Callable[[PromptVersion, HttpRequest], dict[str, Any]]) -> None:
    """Add (or replace, keyed by template) a panel shown on every version page."""
    _version_panels[template_name] = Panel(template_name, context)


def unregister_version_panel(template_name: str) -> None:
    _version_panels.pop(template_name, None)


def register_prompt_panel(template_name: str, context: Callable[[Prompt, HttpRequest], dict[str, Any]]) -> None:
    """Add (or replace, keyed by template) a panel shown in the side column of every prompt page."""
    _prompt_panels[template_name] = Panel(template_name, context)


def _render(panels: dict[str, Panel], key: str, obj: Any, request: HttpRequest) -> list[dict[str, Any]]:
    return [
        {"template_name": panel.template_name, "context": {key: obj, "request": request, **panel.context(obj, request)}}
        for panel in panels.values()
    ]


def render_context(version: PromptVersion, request: HttpRequest) -> list[dict[str, Any]]:
    """(template, context) pairs for the version page, in registration order."""
    return _render(_version_panels, "version", version, request)


def prompt_render_context(prompt: Prompt, request: HttpRequest) -> list[dict[str, Any]]:
    """(template, context) pairs for the prompt page, in registration order."""
    return _render(_prompt_panels, "prompt", prompt, request)
