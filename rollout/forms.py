"""Browser forms of the on-call area; the services validate again and own the rules."""

from __future__ import annotations

from django import forms

from rollout.models import AlertChannel, Monitor, WebhookEventType
from rollout.services import CONFIG_FIELDS
from rollout.webhooks import new_secret


class MonitorForm(forms.ModelForm):
    class Meta:
        model = Monitor
        fields = CONFIG_FIELDS

    def validate_unique(self) -> None:
        # The monitor is identified by its prompt and label, which the form does not edit.
        pass


class AlertChannelForm(forms.ModelForm):
    class Meta:
        model = AlertChannel
        fields = ("name", "kind", "target", "min_severity", "enabled")
        widgets = {"target": forms.TextInput}


class WebhookForm(forms.Form):
    url = forms.CharField(
        max_length=2000,
        label="URL",
        widget=forms.URLInput(attrs={"placeholder": "https://ci.example.com/hooks/promptreg"}),
    )
    events = forms.MultipleChoiceField(
        choices=[(e.value, f"{e.value}: {e.label}") for e in WebhookEventType], widget=forms.CheckboxSelectMultiple
    )
    prompts = forms.CharField(required=False, help_text="Prompt names separated by commas; empty for every prompt.")
    secret = forms.CharField(
        max_length=200,
        initial=new_secret,
        help_text="Copy it into your receiver now: it signs every body and is not shown again.",
    )

    def subscription_fields(self) -> dict:
        names = [n.strip() for n in self.cleaned_data["prompts"].split(",") if n.strip()]
        return {**self.cleaned_data, "prompts": names or None}
