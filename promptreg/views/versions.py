"""The version page (also the review page), Compare, Activate and Roll back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from promptreg import composition_moves, panels, permissions, services
from promptreg.diff import version_diff as build_diff
from promptreg.forms import ReasonForm, ReviewForm
from promptreg.gates import missing_gates
from promptreg.models import PRODUCTION, LabelMove, PromptVersion, VersionStatus
from promptreg.preview import build_preview
from promptreg.views.common import actor, get_prompt, get_version, perform, require


def version_context(request, prompt, version) -> dict:
    """Everything the version page and its review panel show, with what this user may do."""
    user = request.user
    labels = list(prompt.labels.select_related("version").order_by("name"))
    production = next((label.version for label in labels if label.name == PRODUCTION), None)
    own = version.created_by_id is not None and version.created_by_id == user.pk
    missing = missing_gates(version, PRODUCTION) + composition_moves.move_gates(version, PRODUCTION, [])
    is_live = production is not None and production.pk == version.pk
    base = production if production and not is_live else (version.parent if version.parent_id else None)
    reviewed = _reviewed_before(user, version)
    return {
        "prompt": prompt,
        "version": version,
        "preview": build_preview(version.kind, version.body, version.sample_values, prompt.name),
        "version_labels": [label.name for label in labels if label.version_id == version.pk],
        "production": production,
        "is_live": is_live,
        # A revision is shown against the version its reviewer sent back as well as against production
        # (once, under the reviewed heading, when they are the same version).
        "diff": build_diff(base, version) if base and base != reviewed else None,
        "reviewed_diff": build_diff(reviewed, version) if reviewed else None,
        "reviews": list(version.reviews.select_related("reviewer")),
        "missing": missing,
        "own_version": own,
        "can_author": permissions.can_author(user) and not prompt.is_retired,
        "can_submit": permissions.can_author(user)
        and version.status in (VersionStatus.DRAFT, VersionStatus.CHANGES_REQUESTED)
        and not prompt.is_retired,
        "can_review": permissions.can_review(user) and not own and version.status == VersionStatus.IN_REVIEW,
        "can_comment": permissions.can_review(user),
        "can_activate": permissions.can_deploy(user)
        and not is_live
        and not prompt.is_retired
        and (not missing or permissions.can_admin(user)),
        "review_form": ReviewForm(),
        "panels": panels.render_context(version, request),
    }


def _reviewed_before(user, version: PromptVersion) -> PromptVersion | None:
    """The earlier version of this prompt that `user` last reviewed, else the parent a reviewer sent back."""
    earlier = (
        version.prompt.versions.filter(number__lt=version.number, reviews__reviewer=user).order_by("-number").first()
    )
    if earlier is None and version.parent is not None and version.parent.status == VersionStatus.CHANGES_REQUESTED:
        earlier = version.parent
    return earlier


@login_required
def version_detail(request, name: str, number: int):
    prompt = get_prompt(name)
    version = get_version(prompt, number)
    return render(request, "promptreg/version_detail.html", version_context(request, prompt, version))


@login_required
@vary_on_headers("HX-Request")
def version_diff(request, name: str):
    prompt = get_prompt(name)
    numbers = list(prompt.versions.order_by("-number").values_list("number", flat=True))
    if not numbers:
        messages.info(request, "This prompt has no versions to compare yet.")
        return HttpResponseRedirect(reverse("promptreg:prompt-detail", args=[prompt.name]))
    production = prompt.label_version(PRODUCTION)

    def pick(param: str, default: int) -> int:
        value = request.GET.get(param, "")
        return int(value) if value.isdigit() and int(value) in numbers else default

    new_number = pick("to", numbers[0])
    default_old = (
        production.number
        if production and production.number != new_number
        else (numbers[1] if len(numbers) > 1 and numbers[0] == new_number else numbers[0])
    )
    old_number = pick("from", default_old)
    versions = {v.number: v for v in PromptVersion.objects.filter(prompt=prompt, number__in={old_number, new_number})}
    view = "inline" if request.GET.get("view") == "inline" else "split"
    context = {
        "prompt": prompt,
        "numbers": numbers,
        "production": production,
        "diff": build_diff(versions[old_number], versions[new_number]),
        "view": view,
    }
    template = "promptreg/version_diff.html#diff" if request.htmx else "promptreg/version_diff.html"
    return render(request, template, context)


def _confirm(request, template: str, context: dict, form: ReasonForm):
    """The confirmation: a dialog body for htmx, a page without JavaScript, or the form again with errors."""
    context = {**context, "form": form}
    if request.htmx:
        return render(request, f"{template}#confirm", context)
    return render(request, template, context)


def move_message(describe: Callable[[Any], str]) -> Callable[[LabelMove], str]:
    """A label move's success message: what moved, then what else that changes (the prompts that include it)."""
    return lambda move: " ".join(filter(None, [describe(move), composition_moves.move_impact(move)]))


@login_required
def version_activate(request, name: str, number: int):
    require(permissions.can_deploy(request.user), "Moving a label needs the Deployer role.")
    prompt = get_prompt(name)
    version = get_version(prompt, number)
    production = prompt.label_version(PRODUCTION)
    context = {
        "prompt": prompt,
        "version": version,
        "production": production,
        "missing": missing_gates(version, PRODUCTION) + composition_moves.move_gates(version, PRODUCTION, []),
        "impact": composition_moves.impact_for(prompt.name, PRODUCTION),
        "can_override": permissions.can_admin(request.user),
        "diff": build_diff(production, version) if production and production.pk != version.pk else None,
    }
    if request.method != "POST":
        return _confirm(
            request,
            "promptreg/activate_confirm.html",
            context,
            ReasonForm(initial={"expected_current": production.number if production else None}),
        )
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return render(request, "promptreg/activate_confirm.html", {**context, "form": form})
    data = form.cleaned_data
    return perform(
        request,
        lambda: services.label_move(
            name=prompt.name,
            label=PRODUCTION,
            version=version.number,
            actor=actor(request),
            reason=data["reason"],
            override=data["override"],
            expected_current=data["expected_current"],
        ),
        success=move_message(lambda move: f"v{move.to_version.number} of '{prompt.name}' is now live in production."),
        redirect_to=reverse("promptreg:prompt-detail", args=[prompt.name]),
        form=form,
        invalid=lambda: render(request, "promptreg/activate_confirm.html", {**context, "form": form}),
    )


def _live_text(span) -> str:
    """ "live 2 Oct – 3 Nov" (the year shown when it is not this year's): when a rollback target last served."""
    if span is None:
        return ""
    this_year = timezone.localtime().year

    def day(at) -> str:
        at = timezone.localtime(at)
        return f"{at.day} {at:%b}" + (f" {at.year}" if at.year != this_year else "")

    start, end = span
    return f"live {day(start)} – {day(end)}" if end else f"live since {day(start)}"


def _safe_next(request, default: str) -> str:
    """Where to go after the action: the page that opened the dialog (e.g. the on-call page), if it is ours."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


@login_required
def prompt_rollback(request, name: str):
    """The rollback dialog (prompt page and on-call page alike): it names the version production returns to and
    when that version was live, asks for a reason, and is pinned to the version it showed."""
    require(permissions.can_deploy(request.user), "Rolling back needs the Deployer role.")
    prompt = get_prompt(name)
    production = prompt.label_version(PRODUCTION)
    target = services.rollback_target(prompt)
    seen = request.GET.get("seen", "")
    context = {
        "prompt": prompt,
        "production": production,
        "target": target,
        "target_live": _live_text(services.live_span(prompt, target)) if target else "",
        "next": _safe_next(request, ""),
        "moved_since_seen": bool(production and seen.isdigit() and int(seen) != production.number),
        "impact": composition_moves.impact_for(prompt.name, PRODUCTION),
    }
    if request.method != "POST":
        return _confirm(
            request,
            "promptreg/rollback_confirm.html",
            context,
            ReasonForm(initial={"expected_current": production.number if production else None}),
        )
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return render(request, "promptreg/rollback_confirm.html", {**context, "form": form})
    data = form.cleaned_data
    return perform(
        request,
        lambda: services.rollback(
            name=prompt.name, actor=actor(request), reason=data["reason"], expected_current=data["expected_current"]
        ),
        success=move_message(
            lambda move: (
                f"Rolled back: production of '{prompt.name}' went from v{move.from_version.number} back to "
                f"v{move.to_version.number}."
            )
        ),
        redirect_to=_safe_next(request, reverse("promptreg:prompt-detail", args=[prompt.name])),
        form=form,
        invalid=lambda: render(request, "promptreg/rollback_confirm.html", {**context, "form": form}),
    )


@login_required
@require_POST
def version_tags(request, name: str, number: int):
    """Replace a version's tags from the comma-separated field on its page."""
    require(permissions.can_author(request.user), "Tagging a version needs the Author role.")
    tags = [t for t in request.POST.get("tags", "").split(",") if t.strip()]
    url = reverse("promptreg:version-detail", args=[name, number])
    return perform(
        request,
        lambda: services.version_tags_set(name=name, number=number, tags=tags, actor=actor(request)),
        success=f"Tags of v{number} saved.",
        redirect_to=url,
    )
