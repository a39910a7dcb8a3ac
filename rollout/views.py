"""The on-call page: production prompts, monitors, charts, running experiments and canaries, the deployment timeline.

Its Roll back button opens the prompt page's rollback dialog (`promptreg.views.versions.prompt_rollback`)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from promptreg.history import set_change_reason
from promptreg.models import Prompt
from promptreg.permissions import can_admin, can_deploy
from promptreg.views.common import actor, require, service_errors
from rollout.forms import AlertChannelForm, MonitorForm
from rollout.models import METRICS, AlertChannel, AlertDelivery, Monitor, PendingInvalidation, RollbackIncident
from rollout.oncall import deployment_timeline, production_overview
from rollout.services import CONFIG_FIELDS, monitor_configure

STATS_DAYS = 7
TIMELINE_LENGTH = 50


@login_required
@vary_on_headers("HX-Request")
def oncall(request):
    """The whole page, or (htmx polling every 30 s) just the production panel."""
    page = production_overview(timezone.now() - timedelta(days=STATS_DAYS), request.GET.get("page"))
    context = {
        "page": page,
        "rows": page.object_list,
        "metrics": METRICS,
        "can_deploy": can_deploy(request.user),
        "stats_days": STATS_DAYS,
        "pending_invalidations": list(PendingInvalidation.objects.order_by("since")[:20]),
    }
    if request.htmx:
        return render(request, "rollout/oncall.html#production", context)
    timeline = deployment_timeline(TIMELINE_LENGTH)
    incidents = RollbackIncident.objects.for_display()[:10]
    return render(
        request,
        "rollout/oncall.html",
        {**context, "timeline": timeline, "incidents": incidents, "can_admin": can_admin(request.user)},
    )


@login_required
@require_POST
def incident_acknowledge(request, pk: int):
    require(can_deploy(request.user))
    incident = get_object_or_404(RollbackIncident, pk=pk)
    if incident.acknowledge(request.user):
        messages.success(request, f"Acknowledged: {incident.headline}.")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "rollout:oncall"
    return redirect(target)


@login_required
def monitor_edit(request, name: str):
    prompt = get_object_or_404(Prompt, name=name)
    require(can_deploy(request.user))
    monitor = Monitor.objects.of_label(prompt).first()
    form = MonitorForm(request.POST or None, instance=monitor or Monitor(prompt=prompt))
    if request.method == "POST" and form.is_valid():
        with service_errors(request, form, refusal_on_form=True) as outcome:
            monitor_configure(
                name=name,
                actor=actor(request),
                changes={f: form.cleaned_data[f] for f in CONFIG_FIELDS},
            )
        if not outcome.failed:
            messages.success(request, f"Monitor of {name} saved.")
            return redirect("rollout:oncall")
    return render(request, "rollout/monitor_form.html", {"prompt": prompt, "form": form, "monitor": monitor})


@login_required
def channels(request):
    require(can_admin(request.user))
    form = AlertChannelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        channel = form.save(commit=False)
        set_change_reason(channel, f"added by {request.user.get_username()}")
        channel.save()
        messages.success(request, f"Alert channel {channel.name} added.")
        return redirect("rollout:channels")
    deliveries = AlertDelivery.objects.select_related("alert", "channel")[:30]
    return render(
        request,
        "rollout/channels.html",
        {"form": form, "channels": AlertChannel.objects.all(), "deliveries": deliveries},
    )


@login_required
@require_POST
def channel_delete(request, pk: int):
    require(can_admin(request.user))
    channel = get_object_or_404(AlertChannel, pk=pk)
    set_change_reason(channel, f"removed by {request.user.get_username()}")
    channel.delete()
    messages.success(request, f"Alert channel {channel.name} removed.")
    return redirect("rollout:channels")
