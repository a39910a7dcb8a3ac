"""A prompt's labels: which version each one points at, its history, and moving one (gates as configured)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse

from promptreg import composition_moves, permissions, services
from promptreg.forms import LabelMoveForm
from promptreg.models import PRODUCTION
from promptreg.views.common import actor, get_prompt, perform, require
from promptreg.views.versions import move_message

TEMPLATE = "promptreg/labels.html"
HISTORY_PER_LABEL = 50


def _context(request, prompt) -> dict:
    labels = list(prompt.labels.select_related("version").order_by("name"))
    moves = prompt.label_moves.select_related("from_version", "to_version", "actor", "api_key")
    history: dict[str, list] = {}
    for label in labels:
        history[label.name] = list(moves.filter(label=label.name)[:HISTORY_PER_LABEL])
    return {
        "prompt": prompt,
        "labels": [
            (label, history[label.name], composition_moves.impact_for(prompt.name, label.name)) for label in labels
        ],
        "numbers": list(prompt.versions.order_by("-number").values_list("number", flat=True)),
        "can_move": permissions.can_deploy(request.user) and not prompt.is_retired,
        "can_override": permissions.can_admin(request.user),
        "production": PRODUCTION,
    }


@login_required
def prompt_labels(request, name: str):
    prompt = get_prompt(name)
    context = _context(request, prompt)
    if request.method != "POST":
        initial = {
            "label": request.GET.get("label", "staging"),
            "version": request.GET.get("version") or (context["numbers"] or [None])[0],
        }
        return render(
            request, TEMPLATE, {**context, "form": LabelMoveForm(initial=initial, numbers=context["numbers"])}
        )
    require(context["can_move"], "Moving a label needs the Deployer role.")
    form = LabelMoveForm(request.POST, numbers=context["numbers"])
    if not form.is_valid():
        return render(request, TEMPLATE, {**context, "form": form})
    data = form.cleaned_data
    url = reverse("promptreg:prompt-labels", args=[prompt.name])
    return perform(
        request,
        lambda: services.label_move(
            name=prompt.name,
            label=data["label"],
            version=data["version"],
            actor=actor(request),
            reason=data["reason"],
            override=data["override"],
        ),
        success=move_message(
            lambda move: (
                f"{move.label} now points at v{move.to_version.number}"
                + (f" (was v{move.from_version.number})." if move.from_version_id else ".")
            )
        ),
        redirect_to=f"{url}#label-{data['label']}",
        form=form,
        invalid=lambda: render(request, TEMPLATE, {**context, "form": form}),
    )
