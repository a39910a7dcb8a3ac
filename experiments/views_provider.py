"""The evaluation provider settings page (Admins): base URL, default model, API key (never shown), Test connection."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from experiments.llm import provider_effective
from experiments.models import ProviderSettings
from experiments.provider import ProviderError, provider_test, provider_update
from promptreg import permissions
from promptreg.views.common import HtmxHttpRequest, actor, require, service_errors


class ProviderForm(forms.Form):
    base_url = forms.CharField(
        label="Base URL",
        required=False,
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://api.openai.com/v1"}),
        help_text="An OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server): "
        "/chat/completions is appended.",
    )
    model = forms.CharField(
        label="Default model",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "gpt-4o-mini"}),
        help_text="Used when a version's config names no model.",
    )
    api_key = forms.CharField(
        label="API key",
        required=False,
        max_length=1000,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted and never shown again; leave empty to keep the stored one.",
    )
    clear_key = forms.BooleanField(label="Remove the stored key", required=False)


def _context(form: ProviderForm, stored: ProviderSettings, **extra) -> dict:
    return {
        "form": form,
        "stored": stored,
        "effective": provider_effective(),
        "from_environment": bool(settings.LLM_BASE_URL),
        "key_unreadable": stored.has_key and not stored.api_key(),
        **extra,
    }


@login_required
def provider_settings(request: HttpRequest) -> HttpResponse:
    require(permissions.can_admin(request.user), "Setting the evaluation provider needs the Admin role.")
    stored = ProviderSettings.load()
    form = ProviderForm(request.POST or None, initial={"base_url": stored.base_url, "model": stored.model})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with service_errors(request, form, refusal_on_form=True) as outcome:
            _, dropped = provider_update(
                actor=actor(request),
                base_url=data["base_url"],
                model=data["model"],
                api_key=data["api_key"],
                clear_key=data["clear_key"],
            )
        if not outcome.failed:
            note = " The stored API key was removed because the base URL changed: enter it again." if dropped else ""
            messages.success(request, "Evaluation provider saved." + note)
            return HttpResponseRedirect(reverse("experiments:provider"))
    return render(request, "experiments/provider.html", _context(form, stored))


@login_required
@require_POST
def provider_check(request: HtmxHttpRequest) -> HttpResponse:
    """Test connection: one short call to the provider evaluations use now (a fragment for htmx)."""
    require(permissions.can_admin(request.user), "Testing the evaluation provider needs the Admin role.")
    try:
        result, ok = provider_test(actor=actor(request)), True
    except ProviderError as exc:
        result, ok = str(exc), False
    if request.htmx:
        return render(request, "experiments/provider.html#test-result", {"test_result": result, "test_ok": ok})
    stored = ProviderSettings.load()
    form = ProviderForm(initial={"base_url": stored.base_url, "model": stored.model})
    return render(request, "experiments/provider.html", _context(form, stored, test_result=result, test_ok=ok))
