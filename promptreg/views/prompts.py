"""The prompt list and the prompt page; retire and restore."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from promptreg import panels, permissions, services
from promptreg.forms import PromptFilterForm, ReasonForm
from promptreg.models import PRODUCTION, Prompt, ReviewPolicy
from promptreg.preview import build_preview
from promptreg.views.common import actor, get_prompt, perform, require
from promptreg.views.reviews import waiting_for_changes

PAGE_SIZE = 50


@login_required
@vary_on_headers("HX-Request")
def prompt_list(request):
    form = PromptFilterForm(request.GET or None)
    prompts = Prompt.objects.with_summary()
    prompts = form.filter(prompts) if form.is_valid() else prompts.active()
    page = Paginator(prompts, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "filtered": bool(form.is_bound and form.has_changed()),
        "can_author": permissions.can_author(request.user),
    }
    if request.htmx:
        return render(request, "promptreg/prompt_list.html#prompt-table", context)
    return render(request, "promptreg/prompt_list.html", {**context, "waiting": waiting_for_changes(request.user)})


@login_required
def prompt_detail(request, name: str):
    prompt = get_prompt(name)
    labels = list(prompt.labels.select_related("version__created_by", "version__created_by_key").order_by("name"))
    labels_by_version: dict[int, list[str]] = {}
    for label in labels:
        labels_by_version.setdefault(label.version_id, []).append(label.name)
    versions: list[Any] = list(  # each gains its display fields below
        prompt.versions.select_related("created_by", "created_by_key")
        .defer("body", "config", "sample_values", "known_edge_cases", "purpose")
        .prefetch_related("tags")
        .order_by("-number")
    )
    for version in versions:
        # Formatted here, not with template filters: it halves the time of a 500-version timeline.
        version.label_names = labels_by_version.get(version.id, [])
        created = timezone.localtime(version.created_at)
        version.created_iso = created.isoformat()
        version.created_label = f"{created.day} {created:%b %Y, %H:%M}"
        version.commit_summary = Truncator(version.commit_message).chars(140)
    production = next((label.version for label in labels if label.name == PRODUCTION), None)
    user = request.user
    context = {
        "prompt": prompt,
        # Row links are built from this prefix: 500 `{% url %}` calls would cost a third of the page's time.
        "prompt_url": reverse("promptreg:prompt-detail", args=[prompt.name]),
        "tags": list(prompt.tags.all()),
        "labels": labels,
        "moves": list(prompt.label_moves.select_related("from_version", "to_version", "actor", "api_key")[:8]),
        "production": production,
        "preview": build_preview(production.kind, production.body, production.sample_values, prompt.name)
        if production
        else None,
        "versions": versions,
        "latest": versions[0] if versions else None,
        "policy": ReviewPolicy.for_type(prompt.prompt_type),
        "can_author": permissions.can_author(user) and not prompt.is_retired,
        "can_deploy": permissions.can_deploy(user),
        "rollback_to": services.rollback_target(prompt) if production and permissions.can_deploy(user) else None,
        "reason_form": ReasonForm(),
        "panels": panels.prompt_render_context(prompt, request),
    }
    return render(request, "promptreg/prompt_detail.html", context)


def _retire_or_restore(request, name: str, service, success: str):
    require(permissions.can_deploy(request.user), "Retiring or restoring a prompt needs the Deployer role.")
    prompt = get_prompt(name)
    form = ReasonForm(request.POST)
    url = reverse("promptreg:prompt-detail", args=[prompt.name])
    reason = form.data.get("reason", "")
    call = partial(service, name=prompt.name, actor=actor(request), reason=reason)
    return perform(request, call, success=success, redirect_to=url)


@login_required
@require_POST
def prompt_retire(request, name: str):
    return _retire_or_restore(
        request,
        name,
        services.prompt_retire,
        f"'{name}' is retired: hidden from the list and from app servers. Nothing was deleted.",
    )


@login_required
@require_POST
def prompt_restore(request, name: str):
    return _retire_or_restore(request, name, services.prompt_restore, f"'{name}' is restored.")
