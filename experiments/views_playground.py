"""The playground on the dashboard: start a compare (one or more versions, and/or the authoring form's draft, on the
same variables) and show its side-by-side result, polled with htmx until every run has finished.

`POST /experiments/playground/compare/` takes (form-encoded, with the CSRF token):
- `prompt`: the prompt's name (optional only for a new prompt's draft);
- `versions`: version numbers, repeated (`versions=3&versions=5`), run in that order; the first is the baseline of
  the word diff;
- the variables: `variables` (a JSON object) or the authoring form's per-variable fields (`sample-<name>`, …);
- `draft=1` with the authoring form's fields (`kind`, `text` / `msg-N-*`, `prompt_type`): run the unsaved draft too;
- `model`, `temperature`, `max_tokens`, `extra_config` (JSON): the draft's config when `draft=1`, else overrides of
  each version's config for this run.
An htmx request gets the result fragment (`#playground-result`, polling itself); any other is redirected to the
result page `GET /experiments/playground/<id>/`. Any signed-in Author may run; a result is visible to its creator and
to Admins (404 to anyone else).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from experiments.forms_playground import RunSettingsForm
from experiments.playground import Draft, compare_result, compare_start
from promptreg import composition, permissions
from promptreg.exceptions import RegistryError
from promptreg.forms import posted_body
from promptreg.models import PRODUCTION, Prompt, PromptVersion
from promptreg.samples import fields_for, fields_key, json_error, samples_from_post
from promptreg.templating import MESSAGE_ROLES, Template
from promptreg.views.common import get_prompt, require

RESULT = "experiments/playground/result.html"
POLL_SECONDS = 1
CHOICES = 6  # other versions offered on a version page's panel, newest first


def _variables(data) -> tuple[dict[str, Any], str]:
    if "variables" in data:
        return json_error(data["variables"]) if data["variables"].strip() else ({}, "")
    return samples_from_post(data)


def _versions(prompt: Prompt | None, data) -> tuple[list[PromptVersion], str]:
    wanted = [n.strip().lstrip("v") for n in data.getlist("versions") if n.strip()]
    if wanted and prompt is None:
        return [], "Name the prompt whose versions to run."
    if not all(n.isdigit() for n in wanted):
        return [], "Versions are numbers, like 3."
    found = {v.number: v for v in prompt.versions.filter(number__in=wanted)} if prompt else {}
    missing = [n for n in wanted if int(n) not in found]
    if missing:
        return [], f"'{prompt.name}' has no version {missing[0]}."  # type: ignore[union-attr]
    return list(dict.fromkeys(found[int(n)] for n in wanted)), ""


def _error(request, message: str, status: int = 400):
    """The sentence in the result area (htmx: a form error, 200), or on the result page (`status`)."""
    if request.htmx:
        return render(request, f"{RESULT}#playground-result", {"error": message})
    return render(request, RESULT, {"error": message}, status=status)


@login_required
@require_POST
def playground_compare(request):
    require(permissions.can_author(request.user), "Running the playground needs the Author role.")
    data = request.POST
    name = data.get("prompt", "").strip()
    prompt = get_prompt(name) if name else None
    versions, problem = _versions(prompt, data)
    variables, variables_problem = _variables(data)
    settings_form = RunSettingsForm(data)
    problem = problem or variables_problem or ("" if settings_form.is_valid() else settings_form.error_sentence())
    if problem:
        return _error(request, problem)
    draft = None
    if data.get("draft"):
        kind, body = posted_body(data)
        draft = Draft(kind, body, settings_form.config(), data.get("prompt_type", ""))
    try:
        group = compare_start(
            user=request.user,
            prompt=prompt,
            versions=versions,
            variables=variables,
            overrides=None if draft else settings_form.config(),
            draft=draft,
        )
    except RegistryError as exc:  # bad input (400), or no provider configured (503, saying where an Admin sets it)
        return _error(request, exc.message, exc.status)
    if request.htmx:
        return render(request, f"{RESULT}#playground-result", _result_context(request, group))
    return redirect("experiments:playground-result", group)


def _result_context(request, group) -> dict[str, Any]:
    columns = compare_result(group=group, user=request.user)
    prompt = columns[0].run.prompt if columns else None
    production = prompt.label_version(PRODUCTION) if prompt else None
    return {
        "production": production.number if production else None,
        "group": group,
        "columns": columns,
        "pending": any(not c.run.is_finished for c in columns),
        "poll_seconds": POLL_SECONDS,
    }


@login_required
@vary_on_headers("HX-Request")
def playground_result(request, group):
    require(permissions.can_author(request.user), "Playground results need the Author role.")
    context = _result_context(request, group)
    status = 200
    if not context["columns"]:
        context["error"] = (
            "No such playground run: runs are kept for a day, and only their author (and Admins) see them."
        )
        status = 200 if request.htmx else 404  # htmx swaps in only 2xx answers
    template = f"{RESULT}#playground-result" if request.htmx else RESULT
    return render(request, template, context, status=status)


def panel_context(version: PromptVersion, request) -> dict[str, Any]:
    """The playground panel on a version page: the sample fields, the versions to compare, the settings."""
    if not permissions.can_author(request.user):
        return {"can_run": False}
    prompt = version.prompt
    production = prompt.label_version(PRODUCTION)
    checked = {version.number} | ({production.number} if production else set())
    # This version, production and the newest others: enough to pick from without a wall of checkboxes.
    newest = prompt.versions.exclude(number__in=checked).order_by("-number").values_list("number", flat=True)
    numbers = sorted(checked - {version.number}, reverse=True) + list(newest[:CHOICES])
    try:  # the variables of included prompts too: the run fills the resolved template
        template = Template(version.kind, composition.resolve(version).body)
    except composition.CompositionError:
        template = version.template  # the run will say what does not resolve
    return {
        "can_run": True,
        "sample_fields": fields_for(template, version.sample_values),
        "sample_key": fields_key(template),
        "roles": MESSAGE_ROLES,
        "choices": [
            {"number": n, "checked": n in checked, "production": production is not None and n == production.number}
            for n in [version.number, *numbers]
        ],
    }
