"""Dashboard pages for datasets, evaluation runs and a version's evaluation (thin: forms + services)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from experiments import eval_datasets, evaluation, gates
from experiments.datasets import RowErrors, export_csv, export_jsonl, parse_upload
from experiments.forms_evaluation import CaseForm, DatasetForm, PromptDatasetForm, UploadForm
from experiments.models.evaluation import Case, Dataset, EvalRun
from experiments.structure import compiled_diff, structure_check
from promptreg import permissions
from promptreg.views.common import actor, get_prompt, get_version, perform, require, service_errors

RESULTS_PER_PAGE = 100


# ---------------------------------------------------------------- datasets


@login_required
def dataset_list(request):
    can_author = permissions.can_author(request.user)
    form = DatasetForm(request.POST or None)
    if request.method == "POST":
        require(can_author, "Creating a dataset needs the Author role.")
        if form.is_valid():
            data = form.cleaned_data
            with service_errors(request, form) as outcome:
                dataset = eval_datasets.dataset_create(actor=actor(request), **data)
            if not outcome.failed:
                messages.success(request, f"Dataset '{dataset.name}' created. Add cases or upload a file.")
                return HttpResponseRedirect(reverse("experiments:dataset-detail", args=[dataset.pk]))
    datasets = Dataset.objects.order_by("name")
    counts = {d.pk: d.active_cases().count() for d in datasets}
    rows = [(d, counts[d.pk]) for d in datasets]
    return render(
        request, "experiments/evaluation/dataset_list.html", {"rows": rows, "form": form, "can_author": can_author}
    )


def _dataset(pk: int) -> Dataset:
    return get_object_or_404(Dataset, pk=pk)


@login_required
def dataset_detail(request, pk: int):
    dataset = _dataset(pk)
    gated = eval_datasets.gated_by(dataset)
    context = {
        "dataset": dataset,
        "cases": Paginator(dataset.active_cases(), RESULTS_PER_PAGE).get_page(request.GET.get("page")),
        "runs": dataset.runs.select_related("version__prompt").order_by("-created_at")[:20],
        "can_author": permissions.can_author(request.user),
        "gated_by": gated,
        # A gate dataset's cases decide what passes its gate: Reviewers and Admins change them (the service checks).
        "can_change_cases": permissions.can_author(request.user)
        and (not gated or permissions.can_review(request.user)),
        "upload_form": UploadForm(),
        "case_form": CaseForm(),
    }
    return render(request, "experiments/evaluation/dataset_detail.html", context)


@login_required
def dataset_edit(request, pk: int):
    dataset = _dataset(pk)
    require(permissions.can_author(request.user), "Editing a dataset needs the Author role.")
    form = DatasetForm(request.POST) if request.method == "POST" else DatasetForm.for_dataset(dataset)
    if request.method == "POST" and form.is_valid():
        return perform(
            request,
            lambda: eval_datasets.dataset_update(dataset=dataset, actor=actor(request), **form.cleaned_data),
            success="Dataset saved.",
            redirect_to=reverse("experiments:dataset-detail", args=[dataset.pk]),
            form=form,
            invalid=lambda: render(
                request, "experiments/evaluation/dataset_form.html", {"dataset": dataset, "form": form}
            ),
        )
    return render(request, "experiments/evaluation/dataset_form.html", {"dataset": dataset, "form": form})


@login_required
def dataset_upload(request, pk: int):
    dataset = _dataset(pk)
    require(permissions.can_author(request.user), "Importing cases needs the Author role.")
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            rows = parse_upload(upload.name, upload.read())
        except RowErrors as exc:
            form.add_error(
                None, f"{len(exc.problems)} bad row{'s' if len(exc.problems) != 1 else ''}; nothing was imported."
            )
            for line, reason in exc.problems:
                form.add_error(None, f"line {line}: {reason}" if line else reason)
        else:
            with service_errors(request, form) as outcome:
                count = eval_datasets.dataset_import(
                    dataset=dataset, actor=actor(request), rows=rows, replace=form.cleaned_data["replace"]
                )
            if not outcome.failed:
                messages.success(request, f"Imported {count} case{'s' if count != 1 else ''} from {upload.name}.")
                return HttpResponseRedirect(reverse("experiments:dataset-detail", args=[dataset.pk]))
    return render(request, "experiments/evaluation/dataset_upload.html", {"dataset": dataset, "form": form})


@login_required
def dataset_export(request, pk: int, fmt: str):
    dataset = _dataset(pk)
    cases = list(dataset.active_cases())
    body, content_type = (
        (export_csv(cases), "text/csv") if fmt == "csv" else (export_jsonl(cases), "application/x-ndjson")
    )
    response = HttpResponse(body, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="dataset-{dataset.pk}.{fmt}"'
    return response


@login_required
def dataset_history(request, pk: int):
    dataset = _dataset(pk)
    return render(
        request,
        "experiments/evaluation/dataset_history.html",
        {"dataset": dataset, "events": eval_datasets.dataset_history(dataset)},
    )


@login_required
def case_edit(request, pk: int, case_pk: int | None = None):
    dataset = _dataset(pk)
    require(permissions.can_author(request.user), "Editing cases needs the Author role.")
    case = get_object_or_404(Case, pk=case_pk, dataset=dataset, removed_at__isnull=True) if case_pk else None
    if request.method == "POST":
        form = CaseForm(request.POST)
        if form.is_valid():
            with service_errors(request, form) as outcome:
                eval_datasets.case_save(dataset=dataset, case=case, actor=actor(request), **form.cleaned_data)
            if not outcome.failed:
                messages.success(request, "Case saved.")
                return HttpResponseRedirect(reverse("experiments:dataset-detail", args=[dataset.pk]))
    else:
        form = CaseForm.for_case(case) if case else CaseForm()
    return render(request, "experiments/evaluation/case_form.html", {"dataset": dataset, "case": case, "form": form})


@login_required
@require_POST
def case_remove(request, pk: int, case_pk: int):
    dataset = _dataset(pk)
    require(permissions.can_author(request.user), "Removing a case needs the Author role.")
    case = get_object_or_404(Case, pk=case_pk, dataset=dataset)
    return perform(
        request,
        lambda: eval_datasets.case_remove(case=case, actor=actor(request)),
        success=f"Case {case.position} removed; past results keep it.",
        redirect_to=reverse("experiments:dataset-detail", args=[dataset.pk]),
    )


# ---------------------------------------------------------------- runs


def _run(pk: int) -> EvalRun:
    return get_object_or_404(EvalRun.objects.select_related("version__prompt", "dataset", "baseline__version"), pk=pk)


@login_required
def run_detail(request, pk: int):
    run = _run(pk)
    results = run.results.select_related("case").order_by("case__position", "case_id")
    comparison = None
    if run.baseline and run.is_finished and run.baseline.state == "done" and run.state == "done":
        comparison = gates.compare(run, run.baseline, eval_datasets.prompt_alpha(run.version.prompt))
    context = {
        "run": run,
        "metrics": evaluation.run_to_dict(run)["metrics"],
        "metric_names": list(evaluation.run_to_dict(run)["metrics"]),
        "results": Paginator(results, RESULTS_PER_PAGE).get_page(request.GET.get("page")),
        "comparison": comparison,
        "can_author": permissions.can_author(request.user),
    }
    return render(request, "experiments/evaluation/run_detail.html", context)


@login_required
def run_progress(request, pk: int):
    """The progress bar's fragment; when the run finishes, polling stops and the page reloads to show results."""
    run = _run(pk)
    if run.is_finished:
        response = HttpResponseStopPolling()
        response["HX-Refresh"] = "true"
        return response
    return render(request, "experiments/evaluation/run_detail.html#run-progress", {"run": run})


@login_required
@require_POST
def run_cancel(request, pk: int):
    run = _run(pk)
    require(permissions.can_author(request.user), "Cancelling an evaluation needs the Author role.")
    return perform(
        request,
        lambda: evaluation.evaluation_cancel(run=run, actor=actor(request)),
        success="Cancelling: the run stops after the cases in flight.",
        redirect_to=reverse("experiments:run-detail", args=[run.pk]),
    )


# ---------------------------------------------------------------- a version's evaluation


@login_required
def version_evaluation(request, name: str, number: int):
    prompt = get_prompt(name)
    version = get_version(prompt, number)
    context = gates.version_panel_context(version, request)
    context.update(
        {
            "prompt": prompt,
            "version": version,
            "runs": version.eval_runs.select_related("dataset").order_by("-created_at")[:20],
            "other_versions": prompt.versions.exclude(pk=version.pk)
            .order_by("-number")
            .values_list("number", flat=True),
        }
    )
    return render(request, "experiments/evaluation/version_evaluation.html", context)


@login_required
@require_POST
def version_run(request, name: str, number: int):
    prompt = get_prompt(name)
    version = get_version(prompt, number)
    require(permissions.can_author(request.user), "Running an evaluation needs the Author role.")
    start = (
        evaluation.evaluation_alone_start
        if request.POST.get("mode") == "alone"
        else evaluation.evaluation_compare_start
    )
    with service_errors(request) as outcome:
        run = start(version=version, actor=actor(request))
    if not outcome.failed:
        state = "already run" if run.is_finished else "queued"
        messages.success(
            request,
            f"Evaluation {state}: v{version.number} on '{run.dataset.name}'"
            + (" against production." if run.baseline_id else "."),
        )
        return HttpResponseRedirect(reverse("experiments:run-detail", args=[run.pk]))
    return HttpResponseRedirect(reverse("experiments:version-evaluation", args=[prompt.name, version.number]))


@login_required
@require_POST
def prompt_dataset(request, name: str):
    prompt = get_prompt(name)
    require(
        permissions.can_review(request.user), "Choosing a prompt's gate dataset needs the Reviewer role."
    )  # a policy change: Reviewers and Admins
    form = PromptDatasetForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Evaluation dataset: " + " ".join(str(e) for e in form.errors["dataset"]))
    else:
        chosen = form.cleaned_data["dataset"]
        with service_errors(request) as outcome:
            eval_datasets.prompt_set_dataset(prompt=prompt, dataset=chosen, actor=actor(request))
        if not outcome.failed:
            messages.success(request, f"Evaluation dataset of '{prompt.name}': {chosen.name if chosen else 'none'}.")
    back = request.POST.get("next", "")
    return HttpResponseRedirect(
        back
        if back.startswith("/") and not back.startswith("//")
        else reverse("promptreg:prompt-detail", args=[prompt.name])
    )


@login_required
@vary_on_headers("HX-Request")
def version_structure(request, name: str, number: int):
    """Structure checks of a version against a dataset, and its compiled diff against another version."""
    prompt = get_prompt(name)
    version = get_version(prompt, number)
    dataset_id = request.GET.get("dataset", "")
    dataset = (
        Dataset.objects.filter(pk=dataset_id).first() if dataset_id.isdigit() else eval_datasets.prompt_dataset(prompt)
    )
    against = request.GET.get("against", "")
    other = prompt.versions.filter(number=against).first() if against.isdigit() else None
    cases = list(dataset.active_cases()) if dataset else []
    context = {
        "prompt": prompt,
        "version": version,
        "dataset": dataset,
        "datasets": Dataset.objects.order_by("name"),
        "report": structure_check(version, cases) if dataset else None,
        "other": other,
        "other_versions": prompt.versions.exclude(pk=version.pk).order_by("-number").values_list("number", flat=True),
        "diffs": compiled_diff(other, version, cases) if other and dataset else None,
    }
    return render(request, "experiments/evaluation/structure.html", context)
