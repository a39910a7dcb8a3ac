"""Review workflow: submit for review, the reviewers' inbox, approve / request changes."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from promptreg import permissions, services
from promptreg.forms import ReviewForm
from promptreg.models import PromptVersion, Review, VersionStatus
from promptreg.views.common import actor, get_prompt, get_version, perform, require, service_errors
from promptreg.views.versions import version_context


def _in_review():
    return PromptVersion.objects.filter(status=VersionStatus.IN_REVIEW, prompt__retired_at__isnull=True)


def waiting_for_changes(user) -> list[PromptVersion]:
    """The user's versions a reviewer sent back, each with `change_request` (the reviewer and the comment)."""
    versions: list[Any] = list(
        PromptVersion.objects.waiting_for_changes_by(user)
        .select_related("prompt")
        .defer("body", "config", "sample_values")
    )
    requests = Review.objects.select_related("reviewer").in_bulk([v.request_id for v in versions if v.request_id])
    for version in versions:
        version.change_request = requests.get(version.request_id)
    return versions


@login_required
def review_inbox(request):
    versions = (
        _in_review()
        .select_related("prompt", "created_by", "created_by_key")
        .defer("body", "config", "sample_values")
        .order_by("created_at")
    )
    mine = [v for v in versions if v.created_by_id == request.user.pk]
    others = [v for v in versions if v.created_by_id != request.user.pk]
    context = {
        "to_review": others,
        "mine": mine,
        "waiting": waiting_for_changes(request.user),
        "can_review": permissions.can_review(request.user),
    }
    return render(request, "promptreg/review_inbox.html", context)


@login_required
def review_count(request):
    """The nav's counts by the Reviews link: waiting for your review (reviewers), waiting for your changes (authors).
    Refreshed by the `versionReviewed` event."""
    to_review = _in_review().exclude(created_by=request.user).count() if permissions.can_review(request.user) else 0
    to_change = PromptVersion.objects.waiting_for_changes_by(request.user).count()
    return render(request, "promptreg/_review_counts.html", {"to_review": to_review, "to_change": to_change})


@login_required
@require_POST
def version_submit(request, name: str, number: int):
    require(permissions.can_author(request.user), "Submitting for review needs the Author role.")
    prompt = get_prompt(name)
    version = get_version(prompt, number)
    return perform(
        request,
        lambda: services.version_submit_for_review(version=version, actor=actor(request)),
        success=f"v{version.number} is waiting for review. Reviewers see it in their inbox.",
        redirect_to=reverse("promptreg:version-detail", args=[prompt.name, version.number]),
    )


@login_required
@require_POST
@vary_on_headers("HX-Request")
def version_review(request, name: str, number: int):
    require(permissions.can_review(request.user), "Reviewing needs the Reviewer role.")
    prompt = get_prompt(name)
    version = get_version(prompt, number)
    form = ReviewForm(request.POST)
    if form.is_valid():
        with service_errors(request, form) as outcome:
            review = services.review_submit(
                version=version,
                actor=actor(request),
                decision=form.cleaned_data["decision"],
                comment=form.cleaned_data["comment"],
            )
        if not outcome.failed:
            recorded = f"Review recorded: {review.get_decision_display().lower()} on v{version.number}."
            if not request.htmx:
                messages.success(request, recorded)
                return redirect("promptreg:version-detail", prompt.name, version.number)
            version.refresh_from_db()
            version.prompt = prompt
            context = {**version_context(request, prompt, version), "recorded": recorded}
            response = render(request, "promptreg/version_detail.html#review-panel", context)
            return trigger_client_event(
                response, "versionReviewed", {"version": version.number, "status": version.status}
            )
    context = {**version_context(request, prompt, version), "review_form": form}
    template = "promptreg/version_detail.html#review-panel" if request.htmx else "promptreg/version_detail.html"
    return render(request, template, context)
