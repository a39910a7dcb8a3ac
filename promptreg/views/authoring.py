"""The authoring form: a new prompt, or a new version from any existing version.

Editing never changes a version: it always publishes a new draft. The live
panel (detected variables, missing/unused sample values, naming convention,
compiled preview) is re-rendered by htmx as you type.
"""

from __future__ import annotations

import json
import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from promptreg import permissions, services
from promptreg.exceptions import Conflict, Forbidden, RegistryError
from promptreg.forms import VersionForm, apply_row_op, body_from_rows, rows_from_body, rows_from_data
from promptreg.models import Prompt, PromptKind, PromptVersion, prompt_name_warnings, validate_prompt_name
from promptreg.preview import build_preview
from promptreg.templating import MESSAGE_ROLES
from promptreg.views.common import actor, get_prompt, require

TEMPLATE = "promptreg/authoring_form.html"
SNAKE_CASE = re.compile(r"[a-z][a-z0-9_]*")
DEFAULT_ROWS = [
    {"type": "message", "role": "system", "content": "", "name": ""},
    {"type": "message", "role": "user", "content": "", "name": ""},
]


@login_required
@vary_on_headers("HX-Request")
def prompt_new(request):
    require(permissions.can_author(request.user))
    return _author(request, prompt=None, source=None, initial={"kind": PromptKind.TEXT, "prompt_type": "system"})


@login_required
@vary_on_headers("HX-Request")
def version_new(request, name: str):
    require(permissions.can_author(request.user))
    prompt = get_prompt(name)
    if prompt.is_retired:
        messages.error(request, f"'{prompt.name}' is retired; restore it before publishing a new version.")
        return redirect("promptreg:prompt-detail", prompt.name)
    numbers = prompt.versions.order_by("-number").values_list("number", flat=True)
    latest_number = numbers.first() or 0
    wanted = request.GET.get("from", "")
    source = prompt.versions.filter(number=int(wanted)).first() if wanted.isdigit() else prompt.versions.order_by("-number").first()
    return _author(request, prompt=prompt, source=source, initial=VersionForm.initial_from(prompt, source, latest_number))


def _author(request, *, prompt: Prompt | None, source: PromptVersion | None, initial: dict):
    context = {"prompt": prompt, "source": source, "roles": MESSAGE_ROLES}
    if request.method != "POST":
        form = VersionForm(initial=initial, prompt=prompt)
        rows = rows_from_body(source.body) if source and source.kind == PromptKind.CHAT else DEFAULT_ROWS
        return render(request, TEMPLATE, {**context, "form": form, "rows": rows})
    form = VersionForm(request.POST, prompt=prompt)
    op = request.POST.get("op", "")
    if op:  # add / remove / reorder a chat row: nothing is saved
        rows = apply_row_op(form.rows, op)
        if request.htmx:
            response = render(request, f"{TEMPLATE}#chat-rows", {**context, "form": form, "rows": rows})
            return trigger_client_event(response, "rowsChanged", after="settle")
        return render(request, TEMPLATE, {**context, "form": VersionForm(initial=request.POST.dict(), prompt=prompt), "rows": rows})
    if form.is_valid():
        try:
            version = services.version_publish(actor=actor(request), **form.publish_kwargs())
        except Forbidden as exc:
            if exc.code != "policy_change_requires_admin":
                raise PermissionDenied(exc.message) from None
            form.add_error("prompt_type", exc.message)  # an author may publish, just not change the type
        except Conflict as exc:
            form.add_error(None, exc.message)
            context["stale"] = True
        except RegistryError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"v{version.number} of '{version.prompt.name}' is saved as a draft. Submit it for review when it is ready.")
            return redirect("promptreg:version-detail", version.prompt.name, version.number)
    return render(request, TEMPLATE, {**context, "form": form, "rows": form.rows or DEFAULT_ROWS})


@login_required
@require_POST
def authoring_preview(request):
    """The live panel for whatever is in the form right now; validates, never saves."""
    require(permissions.can_author(request.user))
    data = request.POST
    kind = data.get("kind", PromptKind.TEXT)
    body = body_from_rows(rows_from_data(data)) if kind == PromptKind.CHAT else data.get("text", "")
    samples, sample_error = {}, ""
    try:
        parsed = json.loads(data.get("sample_values") or "{}")
        if isinstance(parsed, dict):
            samples = parsed
        else:
            sample_error = "Sample values must be a JSON object, like {\"name\": \"Ada\"}."
    except json.JSONDecodeError as exc:
        sample_error = f"Sample values are not valid JSON yet ({exc.msg}, line {exc.lineno})."
    name_errors, name_warnings = [], []
    if "name" in data:
        name = data["name"].strip()
        if name:
            try:
                validate_prompt_name(name)
            except ValidationError as exc:
                name_errors = exc.messages
            else:
                name_warnings = prompt_name_warnings(name)
                if Prompt.objects.filter(name=name).exists():
                    name_errors = [f"A prompt named '{name}' already exists."]
    preview = build_preview(kind, body, samples)
    context = {
        "preview": preview,
        "sample_error": sample_error,
        "name_errors": name_errors,
        "name_warnings": name_warnings,
        "empty": not (body.strip() if isinstance(body, str) else body),
        "naming_issues": [v for v in preview.variables if not SNAKE_CASE.fullmatch(v)],
    }
    response = render(request, f"{TEMPLATE}#live", context)
    if "name" in data:  # name checks go next to the Name field, swapped out of band
        response.content += render_to_string(f"{TEMPLATE}#name-notes", context, request).encode()
    return response
