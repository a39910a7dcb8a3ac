"""Browser forms of the on-call area; the services validate again and own the rules."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.http import QueryDict

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


NEW_DATASET = "new"


class SamplesToDatasetForm(forms.Form):
    """Samples picked on an incident page become cases; each needs its expected answer (`expected-<id>`)."""

    sample = forms.TypedMultipleChoiceField(
        coerce=int, widget=forms.CheckboxSelectMultiple, error_messages={"required": "Select at least one sample."}
    )
    dataset = forms.ChoiceField(label="Dataset")
    new_dataset = forms.CharField(required=False, max_length=200, label="Name, for a new dataset")

    def __init__(self, *args, sample_ids: list[int], datasets: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["sample"]).choices = [(pk, pk) for pk in sample_ids]
        cast(forms.ChoiceField, self.fields["dataset"]).choices = [*datasets, (NEW_DATASET, "A new dataset…")]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("dataset") == NEW_DATASET and not data.get("new_dataset", "").strip():
            self.add_error("new_dataset", "Name the new dataset.")
        missing = [pk for pk in data.get("sample", []) if not self.expected(pk)]
        if missing:
            self.add_error(
                "sample",
                f"Give the expected answer of sample{'s' if len(missing) > 1 else ''} "
                f"{', '.join(map(str, missing))} (replay it on the previous version, or type a correction).",
            )
        return data

    def selected(self) -> set[int]:
        """The sample ids ticked in the posted form (kept when the form comes back with errors)."""
        posted = self.data.getlist("sample") if isinstance(self.data, QueryDict) else []
        return {int(v) for v in posted if v.isdigit()}

    def expected(self, sample_id: int) -> str:
        return str(self.data.get(f"expected-{sample_id}", "")).strip()

    def picks(self) -> list[tuple[int, str | None]]:
        return [(pk, self.expected(pk)) for pk in self.cleaned_data["sample"]]
