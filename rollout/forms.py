"""Browser forms of the on-call area; the services validate again and own the rules."""

from __future__ import annotations

from django import forms

from rollout.models import AlertChannel, Monitor
from rollout.services import CONFIG_FIELDS


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
