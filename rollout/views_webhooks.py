"""Webhook subscriptions in the dashboard (Admin role): add, remove, send a test event, the delivery log."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from promptreg.permissions import can_admin
from promptreg.services import Actor
from promptreg.views.common import actor, perform, require, service_errors
from rollout import webhooks
from rollout.forms import WebhookForm
from rollout.models import WebhookDelivery, WebhookSubscription

LOG_LENGTH = 50


def _admin_actor(request) -> Actor:
    require(can_admin(request.user))
    return actor(request)


@login_required
def webhook_list(request):
    actor = _admin_actor(request)
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with service_errors(request, form, refusal_on_form=True) as outcome:
            subscription = webhooks.webhook_subscribe(actor=actor, **form.subscription_fields())
        if not outcome.failed:
            messages.success(request, f"Webhook {subscription.pk} added: events go to {subscription.url}.")
            return redirect("rollout:webhooks")
    context = {
        "form": form,
        "subscriptions": WebhookSubscription.objects.active().select_related("created_by", "created_by_key"),
        "deliveries": WebhookDelivery.objects.select_related("event", "subscription")[:LOG_LENGTH],
    }
    return render(request, "rollout/webhooks.html", context)


@login_required
@require_POST
def webhook_remove(request, pk: int):
    return perform(
        request,
        lambda: webhooks.webhook_remove(subscription_id=pk, actor=_admin_actor(request)),
        success=lambda subscription: f"Webhook {pk} ({subscription.url}) removed.",
        redirect_to=reverse("rollout:webhooks"),
    )


@login_required
@require_POST
def webhook_test(request, pk: int):
    return perform(
        request,
        lambda: webhooks.webhook_send_test(subscription_id=pk, actor=_admin_actor(request)),
        success=f"Test event queued for webhook {pk}; its delivery shows below.",
        redirect_to=reverse("rollout:webhooks"),
    )
