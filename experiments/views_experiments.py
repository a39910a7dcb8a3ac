"""Dashboard pages for A/B experiments and canaries: list, create (with the required
sample size), the analysis page with its Plotly charts, and the actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from experiments import analysis, charts, creation, decision, services, verdict
from experiments.analysis import (
    experiment_analyse,
    experiment_history,
    experiment_required_n,
    experiment_session_means,
    experiment_snapshot,
)
from experiments.forms_experiments import ExperimentForm
from experiments.models import AnalysisSnapshot, Experiment, ExperimentKind, ExperimentMode, ExperimentState, MetricKind
from promptreg import permissions
from promptreg.diff import version_diff as build_diff
from promptreg.exceptions import InvalidInput
from promptreg.gates import missing_gates
from promptreg.models import Prompt
from promptreg.views.common import HtmxHttpRequest, actor, perform, require, service_errors


def _get(pk: int) -> Experiment:
    return get_object_or_404(Experiment.objects.select_related("prompt", "control_version", "treatment_version"), pk=pk)


@login_required
def experiment_list(request: HttpRequest) -> HttpResponse:
    last_decision = (
        AnalysisSnapshot.objects.filter(experiment=OuterRef("pk"))
        .order_by("-computed_at", "-id")
        .values("decision")[:1]
    )
    experiments = Experiment.objects.select_related("prompt", "control_version", "treatment_version").annotate(
        last_decision=Subquery(last_decision)
    )[:200]
    rows: list[Any] = list(experiments)  # each gains `last_verdict`, the label of its last decision
    for experiment in rows:
        experiment.last_verdict = verdict.DECISION_LABELS.get(experiment.last_decision, experiment.last_decision)
    return render(
        request, "experiments/ab/list.html", {"experiments": rows, "can_deploy": permissions.can_deploy(request.user)}
    )


def _plan(experiment: Experiment) -> dict:
    """The plan in words, shown before and after the start: guardrails and the sample size it needs."""
    required = experiment_required_n(experiment)
    return {
        "guardrail_rules": [verdict.guardrail_rule(g) for g in experiment.guardrails],
        "required": {"control": required[0], "treatment": required[1]} if required else None,
        "metric_name": verdict.metric_name(experiment.primary_metric),
        "metric_unit": verdict.metric_unit(experiment.primary_metric),
    }


def _analysis_context(experiment: Experiment) -> dict:
    """The analysis panel: the verdict as a sentence, the numbers, the guardrails in words and the figures."""
    context = {"experiment": experiment, "analysis": None, "plan": _plan(experiment)}
    if experiment.state == ExperimentState.DRAFT:
        return context
    analysis = experiment_analyse(experiment).to_dict()
    history = experiment_history(experiment)
    metric = experiment.primary_metric
    figures = {"lift-now": charts.lift_now(analysis)}
    guardrails = charts.guardrails_now(analysis)
    if guardrails:
        figures["guardrails-now"] = guardrails
    if history:
        figures.update(
            {
                "means-over-time": charts.means_over_time(history, metric),
                "samples-over-time": charts.samples_over_time(history, analysis["required_n"]),
                "lift-over-time": charts.lift_over_time(history, experiment.mode == ExperimentMode.SEQUENTIAL, metric),
                "decisions-over-time": charts.decisions_over_time(history),
            }
        )
    figures["distributions"] = charts.distributions(experiment_session_means(experiment, metric), metric)
    relative = analysis["primary"]["relative_lift"]
    return {
        **context,
        **_analysis_headline(experiment, analysis),
        "figures": figures,
        "snapshots": len(history),
        "relative_pct": relative * 100 if relative is not None else None,
        "decision_label": verdict.DECISION_LABELS.get(analysis["decision"], analysis["decision"]),
        "guardrail_rows": verdict.guardrail_rows(analysis),
        "primary_p": verdict.p_value(analysis["primary"]["p_value"]),
        "srm_p": verdict.p_value(analysis["srm"]["p_value"]),
        "confidence": f"{1 - experiment.alpha:.0%}",
    }


@login_required
@vary_on_headers("HX-Request")
def experiment_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    experiment = _get(pk)
    can_deploy = permissions.can_deploy(request.user)
    context = {**_analysis_context(experiment), "can_refresh": can_deploy}
    if request.htmx:
        return render(request, "experiments/ab/detail.html#analysis", context)
    is_open = experiment.state in (ExperimentState.RUNNING, ExperimentState.STOPPED)
    context.update(
        can_start=can_deploy and experiment.state == ExperimentState.DRAFT,
        can_stop=can_deploy and experiment.state == ExperimentState.RUNNING,
        can_close=can_deploy and is_open,
        is_canary=experiment.kind == ExperimentKind.CANARY,
        history=experiment.history.select_related("history_user").order_by("-history_date")[:20],
    )
    return render(request, "experiments/ab/detail.html", context)


@login_required
@require_POST
def experiment_refresh(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Recompute and store the analysis now (the dashboard's refresh button): a write, so Deployers only
    (beat refreshes every running experiment anyway)."""
    require(permissions.can_deploy(request.user), "Refreshing an experiment needs the Deployer role.")
    experiment = _get(pk)
    experiment_snapshot(experiment.pk)
    if request.htmx:
        return render(
            request, "experiments/ab/detail.html#analysis", {**_analysis_context(experiment), "can_refresh": True}
        )
    return HttpResponseRedirect(reverse("experiments:experiment-detail", args=[pk]))


ACTIONS: dict[str, tuple[Callable[..., Any], str]] = {
    "start": (services.experiment_start, "Started: sessions are now routed to the treatment."),
    "stop": (services.experiment_stop, "Stopped: every session gets the control from the next fetch on."),
    "ship": (services.experiment_ship, "Shipped: the label now serves the treatment."),
    "conclude": (services.experiment_conclude, "Concluded: the control stays, every session gets it."),
}
CONFIRMED = ("start", "ship")  # they change what most sessions get: a dialog states how much first


def _confirm(request: HtmxHttpRequest, experiment: Experiment, action: str) -> HttpResponse:
    """The confirmation of Start or Ship: the traffic share it sets, the verdict (ship), and any breaking-variable
    warning (the treatment needs other variables than the control). A dialog body for htmx, a page without JS."""
    context = {
        "experiment": experiment,
        "action": action,
        "is_canary": experiment.kind == ExperimentKind.CANARY,
        "diff": build_diff(experiment.control_version, experiment.treatment_version),
        "share": f"{experiment.traffic_fraction * 100:.4g}",
        "rest": f"{(1 - experiment.traffic_fraction) * 100:.4g}",
        "can_override": permissions.can_admin(request.user),
    }
    if action == "ship":
        analysis = experiment_analyse(experiment)
        context.update(
            _analysis_headline(experiment, analysis.to_dict()),
            blocked=services.ship_blocker(experiment, analysis) is not None,
        )
    else:
        context["missing"] = missing_gates(experiment.treatment_version, experiment.label)
    context["held_back"] = bool(
        context.get("missing") or context.get("blocked")
    )  # the service refuses without an override
    template = "experiments/ab/confirm.html"
    return render(request, f"{template}#confirm" if request.htmx else template, context)


def _analysis_headline(experiment: Experiment, analysis: dict | None = None) -> dict:
    """The analysis (computed now unless given) and its verdict as one sentence."""
    analysis = analysis or experiment_analyse(experiment).to_dict()
    return {
        "analysis": analysis,
        "headline": verdict.headline(
            analysis,
            treatment=experiment.treatment_version.number,
            control=experiment.control_version.number,
            alpha=experiment.alpha,
            canary=experiment.kind == ExperimentKind.CANARY,
        ),
    }


@login_required
def experiment_action(request: HtmxHttpRequest, pk: int, action: str) -> HttpResponse:
    """GET: the confirmation of Start or Ship. POST: the action, through the same service as the API."""
    if action not in ACTIONS:
        raise Http404
    require(permissions.can_deploy(request.user), "Starting or shipping an experiment needs the Deployer role.")
    if request.method != "POST":
        if action not in CONFIRMED:
            return HttpResponseNotAllowed(["POST"])
        return _confirm(request, _get(pk), action)
    call, success = ACTIONS[action]
    kwargs = {"experiment_id": pk, "actor": actor(request), "reason": request.POST.get("reason", "")}
    if action in ("start", "ship"):
        kwargs["override"] = request.POST.get("override") == "on"
    url = reverse("experiments:experiment-detail", args=[pk])
    return perform(request, lambda: call(**kwargs), success=success, redirect_to=url)


def _required_n(data: dict) -> dict:
    """What the creation form shows as the required sample size, from whatever is filled in so far."""

    def number(key: str) -> float | None:
        try:
            return float(data.get(key) or "")
        except ValueError:
            return None

    alpha, power, fraction = number("alpha") or 0.05, number("power") or 0.8, number("traffic_fraction") or 0.5
    mde, sd = number("minimum_detectable_effect"), number("baseline_sd")
    estimated = None
    if mde and not sd:
        prompt = Prompt.objects.filter(name=data.get("prompt", "")).first()
        version = None
        if prompt:
            control = number("control_version")
            version = (
                prompt.versions.filter(number=int(control)).first()
                if control
                else prompt.label_version(data.get("label") or "production")
            )
        if version:
            n, mean, sd = analysis.baseline_estimate(version, data.get("primary_metric") or "quality_score")
            if data.get("primary_kind") == MetricKind.PROPORTION and mean is not None and 0 < mean < 1:
                sd = (mean * (1 - mean)) ** 0.5
            estimated = {"n": n, "version": version.number}
    valid = 0 < alpha < 0.5 and 0.5 <= power < 1 and 0 < fraction < 1
    required = decision.required_n(sd=sd, mde=mde, alpha=alpha, power=power, fraction=fraction) if valid else None
    return {"required": required, "sd": sd, "mde": mde, "estimated": estimated, "alpha": alpha, "power": power}


@login_required
def experiment_sample_size(request: HttpRequest) -> HttpResponse:
    return render(request, "experiments/ab/form.html#sample-size", _required_n(request.GET))


@login_required
def experiment_new(request: HttpRequest) -> HttpResponse:
    require(permissions.can_deploy(request.user), "Creating an experiment needs the Deployer role.")
    if request.method != "POST":
        initial: dict[str, Any] = {k: v for k, v in request.GET.items() if k in ExperimentForm.base_fields}
        if initial.get("kind") == ExperimentKind.CANARY:
            initial.setdefault("traffic_fraction", creation.DEFAULT_CANARY_FRACTION)
        form = ExperimentForm(initial=initial)
        return render(request, "experiments/ab/form.html", {"form": form, **_required_n(initial)})
    form = ExperimentForm(request.POST)
    if form.is_valid():
        data = dict(form.cleaned_data)
        with service_errors(request, form) as outcome:
            if not data["control_version"]:
                prompt = Prompt.objects.filter(name=data["prompt"]).first()
                live = prompt.label_version(data["label"]) if prompt else None
                if live is None:
                    raise InvalidInput(
                        f"'{data['prompt']}' has no {data['label']} version to be the control; give a control version."
                    )
                data["control_version"] = live.number
            experiment = creation.experiment_create(actor=actor(request), **data)
        if not outcome.failed:
            messages.success(request, "Created as a draft: check the plan, then start it.")
            return HttpResponseRedirect(reverse("experiments:experiment-detail", args=[experiment.pk]))
    return render(request, "experiments/ab/form.html", {"form": form, **_required_n(request.POST)})
