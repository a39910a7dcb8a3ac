"""Helpers shared by the dashboard views."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
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


def require(allowed: bool, message: str = "") -> None:
    """A check in the view, not only an `{% if %}` in the template: 403 when not allowed, the page saying `message`
    (what needs which role: "Running the playground needs the Author role.")."""
    if not allowed:
        raise PermissionDenied(message)


def get_prompt(name: str) -> Prompt:
    return get_object_or_404(Prompt.objects.select_related("owner"), name=name)


def get_version(prompt: Prompt, number: int) -> PromptVersion:
    version = get_object_or_404(
        PromptVersion.objects.select_related("created_by", "created_by_key"), prompt=prompt, number=number
    )
    version.prompt = prompt
    return version


@dataclass
class Outcome:
    """What `service_errors` saw: `failed` once it has shown a registry error (nothing was changed)."""

    failed: bool = False


@contextmanager
def service_errors(
    request: HttpRequest, form: forms.BaseForm | None = None, *, refusal_on_form: bool = False
) -> Iterator[Outcome]:
    """The one adapter from the services' errors to the dashboard, around a service call.

    A refusal (`Forbidden`) is a 403 (or, with `refusal_on_form`, an error on the form); any other registry error goes
    on `form`, with the fields and rows it names, or without a form into the messages; the block stops there and
    `failed` is set."""
    outcome = Outcome()
    try:
        yield outcome
    except Forbidden as exc:
        if not (refusal_on_form and form is not None):
            raise PermissionDenied(exc.message) from None
        outcome.failed = True
        form.add_error(None, exc.message)
    except RegistryError as exc:
        outcome.failed = True
        if form is None:
            messages.error(request, exc.message)
            return
        fields = exc.details.get("fields")
        if isinstance(fields, dict):
            for field, errors in fields.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, exc.message)
        for row in exc.details.get("rows", []):
            form.add_error(None, f"line {row['line']}: {row['reason']}" if row["line"] else row["reason"])


def perform(
    request: HttpRequest,
    call: Callable[[], Any],
    *,
    success: str | Callable[[Any], str],
    redirect_to: str,
    form: forms.BaseForm | None = None,
    invalid: Callable[[], HttpResponse] | None = None,
) -> HttpResponse:
    """Run a service call through `service_errors`; on success say `success` (or `success(result)`) and go to
    `redirect_to`. On an error: `invalid()` (the form again, showing it), else `redirect_to` with the message."""
    with service_errors(request, form) as outcome:
        result = call()
    if outcome.failed:
        return invalid() if invalid is not None else HttpResponseRedirect(redirect_to)
    messages.success(request, success(result) if callable(success) else success)
    return HttpResponseRedirect(redirect_to)
