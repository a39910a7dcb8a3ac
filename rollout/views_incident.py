"""An automatic rollback's page: the rolled-back version's worst production samples beside the previous version's,
a replay of a sample on the previous version, and "Add to dataset".

"Replay on vN" posts to the playground's compare (`experiments:playground-compare`, which checks the Author role) with
the sample's variables; its polling result fragment lands in the sample's row."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from experiments.eval_datasets import prompt_dataset
from experiments.models import Dataset
from experiments.samples import samples_to_dataset
from promptreg.permissions import can_author, can_deploy
from promptreg.views.common import actor, require, service_errors
from rollout.forms import NEW_DATASET, SamplesToDatasetForm
from rollout.incident import incident_samples
from rollout.models import RollbackIncident


def _form(incident: RollbackIncident, samples, data=None) -> SamplesToDatasetForm:
    gate = prompt_dataset(incident.prompt)
    datasets = list(Dataset.objects.order_by("name").values_list("pk", "name"))
    if gate is not None:  # the prompt's own dataset first: its cases gate the next version
        datasets.sort(key=lambda d: d[0] != gate.pk)
    return SamplesToDatasetForm(
        data,
        sample_ids=[row.worst.sample.pk for row in samples.rows],
        datasets=[
            (str(pk), name + (" (this prompt's dataset)" if gate and pk == gate.pk else "")) for pk, name in datasets
        ],
        initial={"dataset": str(gate.pk) if gate else NEW_DATASET, "new_dataset": f"{incident.prompt.name}-incidents"},
    )


def _page(request, incident: RollbackIncident, samples, form: SamplesToDatasetForm):
    context: dict[str, Any] = {
        "incident": incident,
        "samples": samples,
        "form": form,
        "selected": form.selected(),
        "rows": [
            (
                row,
                form.expected(row.worst.sample.pk)
                if form.is_bound
                else (row.similar.sample.output if row.similar and row.similarity == 1.0 else ""),
                json.dumps(row.worst.sample.variables),  # what "Replay" posts to the playground's compare
            )
            for row in samples.rows
        ],
        "can_author": can_author(request.user),
        "can_deploy": can_deploy(request.user),
    }
    return render(request, "rollout/incident.html", context)


def _incident(pk: int) -> RollbackIncident:
    return get_object_or_404(RollbackIncident.objects.for_display().select_related("monitor"), pk=pk)


@login_required
def incident_detail(request, pk: int):
    incident = _incident(pk)
    samples = incident_samples(incident)
    return _page(request, incident, samples, _form(incident, samples))


@login_required
@require_POST
def incident_add_cases(request, pk: int):
    require(can_author(request.user))
    incident = _incident(pk)
    samples = incident_samples(incident)
    form = _form(incident, samples, request.POST)
    if form.is_valid():
        choice = form.cleaned_data["dataset"]
        with service_errors(request, form, refusal_on_form=True) as outcome:
            dataset, result = samples_to_dataset(
                prompt=incident.prompt,
                picks=form.picks(),
                actor=actor(request),
                dataset=None if choice == NEW_DATASET else Dataset.objects.get(pk=choice),
                new_name=form.cleaned_data["new_dataset"],
            )
        if not outcome.failed:
            already = f" ({result.already} already there)" if result.already else ""
            messages.success(
                request, f"Added {result.added} case{'s' if result.added != 1 else ''} to '{dataset.name}'{already}."
            )
            return redirect("rollout:incident", incident.pk)
    return _page(request, incident, samples, form)
