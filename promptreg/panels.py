"""Extra panels on the version page, registered by apps above the registry.

The evaluation app shows its score diff here without the registry importing it:

    register_version_panel("experiments/version_scores.html", scores_context)

Each panel's template is included with the dict its context function returns
(plus `version` and `request`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from django.http import HttpRequest

from promptreg.models import PromptVersion

PanelContext = Callable[[PromptVersion, HttpRequest], dict[str, Any]]


@dataclass(frozen=True)
class VersionPanel:
    template_name: str
    context: PanelContext


_panels: dict[str, VersionPanel] = {}


def register_version_panel(template_name: str, context: PanelContext) -> None:
    """Add (or replace, keyed by template) a panel shown on every version page."""
    _panels[template_name] = VersionPanel(template_name, context)


def unregister_version_panel(template_name: str) -> None:
    _panels.pop(template_name, None)


def render_context(version: PromptVersion, request: HttpRequest) -> list[dict[str, Any]]:
    """(template, context) pairs for the version page, in registration order."""
    return [
        {"template_name": panel.template_name, "context": {"version": version, "request": request, **panel.context(version, request)}}
        for panel in _panels.values()
    ]
