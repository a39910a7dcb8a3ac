"""Helpers shared by the dashboard views."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django_htmx.middleware import HtmxDetails

from promptreg.exceptions import Forbidden, RegistryError
from promptreg.models import MoveVia, Prompt, PromptVersion
from promptreg.services import Actor


class HtmxHttpRequest(HttpRequest):
    """A request as views see it: django-htmx's middleware (on every request) sets `request.htmx`."""

    htmx: HtmxDetails


def actor(request: HttpRequest) -> Actor:
    return Actor(via=MoveVia.BUTTON, user=request.user)


def require(allowed: bool) -> None:
    """A check in the view, not only an `{% if %}` in the template: 403 when not allowed."""
    if not allowed:
        raise PermissionDenied


def get_prompt(name: str) -> Prompt:
    return get_object_or_404(Prompt.objects.select_related("owner"), name=name)


def get_version(prompt: Prompt, number: int) -> PromptVersion:
    version = get_object_or_404(
        PromptVersion.objects.select_related("created_by", "created_by_key"), prompt=prompt, number=number
    )
    version.prompt = prompt
    return version


def done_or_error(request: HttpRequest, action, success: str, redirect_to: str) -> HttpResponseRedirect:
    """Run a service call; a registry error becomes a message (a refusal becomes 403), then redirect."""
    try:
        action()
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from None
    except RegistryError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success)
    return HttpResponseRedirect(redirect_to)
