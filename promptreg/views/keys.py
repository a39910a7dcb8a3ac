"""The API-key page: issue a key owned by the signed-in user (the secret shown once), list and revoke keys."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from promptreg import permissions, services
from promptreg.models import ApiKey, Scope
from promptreg.views.common import actor, perform, require, service_errors


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the key is for, e.g. 'support-app-prod'.")
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)
    gate_override = forms.BooleanField(
        required=False, label="Gate override (Admins): its label moves bypass the gates, each recorded as an override"
    )


def _has_a_role(user) -> bool:
    return any(permissions.has_role(user, role) for role in permissions.ROLES)


@login_required
def api_keys(request):
    """Admins see every key; others their own. A POST issues a key owned by the signed-in user."""
    require(_has_a_role(request.user), "API keys need a role (Author, Reviewer, Deployer or Admin).")
    form = ApiKeyForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with service_errors(request, form, refusal_on_form=True) as outcome:
            issued = services.api_key_issue(
                actor=actor(request), name=data["name"], scopes=data["scopes"], gate_override=data["gate_override"]
            )
        if not outcome.failed:
            form = ApiKeyForm()
    keys = ApiKey.objects.select_related("owner").order_by("-created_at")
    if not permissions.can_admin(request.user):
        keys = keys.filter(owner=request.user)
    context = {"form": form, "keys": keys[:200], "issued": issued and {"key": issued[0], "secret": issued[1]}}
    return render(request, "promptreg/api_keys.html", context)


@login_required
@require_POST
def api_key_revoke(request, pk: int):
    key = get_object_or_404(ApiKey, pk=pk)
    return perform(
        request,
        lambda: services.api_key_revoke(actor=actor(request), key=key),
        success=f"API key '{key.name}' revoked: every server refuses it from the next request.",
        redirect_to=reverse("promptreg:api-keys"),
    )
