"""Webhook subscriptions in the dashboard (Admin role): add, remove, send a test event, the delivery log."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from promptreg.exceptions import RegistryError
from promptreg.models import MoveVia
from promptreg.permissions import can_admin
from promptreg.services import Actor
from rollout import webhooks
from rollout.forms import WebhookForm
from rollout.models import WebhookDelivery, WebhookSubscription

LOG_LENGTH = 50


def _admin_actor(request) -> Actor:
    if not can_admin(request.user):
        raise PermissionDenied
    return Actor(via=MoveVia.BUTTON, user=request.user)


@login_required
def webhook_list(request):
    actor = _admin_actor(request)
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            subscription = webhooks.webhook_subscribe(actor=actor, **form.subscription_fields())
        except RegistryError as exc:
            for field, errors in exc.details.get("fields", {"__all__": [exc.message]}).items():
                form.add_error(field if field in form.fields else None, errors)
        else:
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
    try:
        subscription = webhooks.webhook_remove(subscription_id=pk, actor=_admin_actor(request))
    except RegistryError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Webhook {pk} ({subscription.url}) removed.")
    return redirect("rollout:webhooks")


@login_required
@require_POST
def webhook_test(request, pk: int):
    try:
        webhooks.webhook_send_test(subscription_id=pk, actor=_admin_actor(request))
    except RegistryError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Test event queued for webhook {pk}; its delivery shows below.")
    return redirect("rollout:webhooks")
