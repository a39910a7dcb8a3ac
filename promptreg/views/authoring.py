"""The authoring form: a new prompt, or a new version from any existing version.

Editing never changes a version: it always publishes a new draft. The live
panel (detected variables, missing/unused sample values, naming convention,
compiled preview) is re-rendered by htmx as you type.
"""

from __future__ import annotations

import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from promptreg import permissions, services
from promptreg.exceptions import Conflict, Forbidden, InvalidInput
from promptreg.forms import VersionForm, apply_row_op, posted_body, rows_from_body, too_long_message
from promptreg.models import (
    PRODUCTION,
    Prompt,
    PromptKind,
    PromptVersion,
    VersionStatus,
    prompt_name_warnings,
    validate_prompt_name,
)
from promptreg.preview import build_preview
from promptreg.samples import AS_JSON, as_json, fields_for, fields_key, samples_from_post
from promptreg.services import MAX_BODY_CHARS
from promptreg.templating import MESSAGE_ROLES, Template
from promptreg.views.common import actor, get_prompt, require, service_errors

TEMPLATE = "promptreg/authoring_form.html"
SNAKE_CASE = re.compile(r"[a-z][a-z0-9_]*")
DEFAULT_ROWS = [
    {"type": "message", "role": "system", "content": "", "name": ""},
    {"type": "message", "role": "user", "content": "", "name": ""},
]


@login_required
@vary_on_headers("HX-Request")
def prompt_new(request):
    require(permissions.can_author(request.user), "Writing a prompt needs the Author role.")
    return _author(request, prompt=None, source=None, initial={"kind": PromptKind.TEXT, "prompt_type": "system"})


@login_required
@vary_on_headers("HX-Request")
def version_new(request, name: str):
    require(permissions.can_author(request.user), "Writing a version needs the Author role.")
    prompt = get_prompt(name)
    if prompt.is_retired:
        messages.error(request, f"'{prompt.name}' is retired; restore it before publishing a new version.")
        return redirect("promptreg:prompt-detail", prompt.name)
    numbers = list(prompt.versions.order_by("-number").values_list("number", flat=True))
    latest_number = numbers[0] if numbers else 0
    production = prompt.label_version(PRODUCTION)
    # After a rollback the newest version is often the bad one: start from what production serves, unless asked.
    wanted = request.GET.get("from", "")
    if wanted.isdigit() and int(wanted) in numbers:
        source: PromptVersion | None = prompt.versions.get(number=int(wanted))
    else:
        source = production or prompt.latest_version()
    context = {"production": production, "numbers": numbers}
    return _author(
        request,
        prompt=prompt,
        source=source,
        initial=VersionForm.initial_from(prompt, source, latest_number),
        extra=context,
    )


def _samples_context(kind: str, body, values: dict) -> dict:
    template = Template(kind, body)
    return {"sample_fields": fields_for(template, values), "sample_key": fields_key(template)}


def _author(request, *, prompt: Prompt | None, source: PromptVersion | None, initial: dict, extra: dict | None = None):
    context = {"prompt": prompt, "source": source, "roles": MESSAGE_ROLES, **(extra or {})}
    if request.method != "POST":
        form = VersionForm(initial=initial, prompt=prompt)
        rows = rows_from_body(source.body) if source and source.kind == PromptKind.CHAT else DEFAULT_ROWS
        body = source.body if source else ""
        samples = _samples_context(
            source.kind if source else PromptKind.TEXT, body, source.sample_values if source else {}
        )
        return render(request, TEMPLATE, {**context, **samples, "form": form, "rows": rows})
    form = VersionForm(request.POST, prompt=prompt)
    kind, body = posted_body(request.POST)
    context.update(_samples_context(kind, body, samples_from_post(request.POST)[0]))
    op = request.POST.get("op", "")
    if op:  # add / remove / reorder a chat row: nothing is saved
        rows = apply_row_op(form.rows, op)
        if request.htmx:
            response = render(request, f"{TEMPLATE}#chat-rows", {**context, "form": form, "rows": rows})
            return trigger_client_event(response, "rowsChanged", after="settle")
        return render(
            request,
            TEMPLATE,
            {**context, "form": VersionForm(initial=request.POST.dict(), prompt=prompt), "rows": rows},
        )
    if form.is_valid():
        with service_errors(request, form) as outcome:
            try:
                version = services.version_publish(actor=actor(request), **form.publish_kwargs())
                if request.POST.get("then") == "submit":
                    version = services.version_submit_for_review(version=version, actor=actor(request))
            except Conflict:
                context["stale"] = True
                raise
            except Forbidden as exc:
                if exc.code != "policy_change_requires_admin":
                    raise
                # An author may publish, just not change the type: the refusal goes on that field.
                raise InvalidInput(exc.message, details={"fields": {"prompt_type": [exc.message]}}) from None
        if not outcome.failed:
            if version.status == VersionStatus.IN_REVIEW:
                messages.success(
                    request,
                    f"v{version.number} of '{version.prompt.name}' is saved and waiting for review. Reviewers see it "
                    f"in their inbox.",
                )
            else:
                messages.success(
                    request,
                    f"v{version.number} of '{version.prompt.name}' is saved as a draft. Submit it for review when it "
                    f"is ready.",
                )
            return redirect("promptreg:version-detail", version.prompt.name, version.number)
    return render(request, TEMPLATE, {**context, "form": form, "rows": form.rows or DEFAULT_ROWS})


@login_required
@require_POST
def authoring_preview(request):
    """The live panel for whatever is in the form right now; validates, never saves."""
    require(permissions.can_author(request.user), "The authoring preview needs the Author role.")
    data = request.POST
    kind, body = posted_body(data)
    samples, sample_error = samples_from_post(data)
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
    size = len(body) if isinstance(body, str) else sum(len(m.get("content", "")) for m in body)
    context = {
        "preview": preview,
        "sample_error": sample_error,
        "name_errors": name_errors,
        "name_warnings": name_warnings,
        "empty": not (body.strip() if isinstance(body, str) else body),
        "naming_issues": [v for v in preview.variables if not SNAKE_CASE.fullmatch(v)],
        "too_long": too_long_message("The text is", size) if size > MAX_BODY_CHARS else "",
        "oob": True,
        "roles": MESSAGE_ROLES,
        **_samples_context(kind, body, samples),
        "sample_json": as_json(samples),
    }
    response = render(request, f"{TEMPLATE}#live", context)
    # Swapped out of band: the name checks next to the Name field, and the sample inputs. The fields are redrawn
    # only when the variables change (or from the JSON box), so typing in a field never loses its focus.
    fragments = ["name-notes"] if "name" in data else []
    if data.get(AS_JSON):
        fragments += [] if sample_error else ["sample-fields"]
    else:
        fragments += ["sample-json"] + (
            ["sample-fields"] if data.get("sample_fields_for") != context["sample_key"] else []
        )
    for fragment in fragments:
        response.content += render_to_string(f"{TEMPLATE}#{fragment}", context, request).encode()
    return response
