"""The playground's run settings: the same model fields as the authoring form, so its values post straight in."""

from __future__ import annotations

from typing import Any

from django import forms

from promptreg.forms import json_object


class RunSettingsForm(forms.Form):
    """Model and request parameters for a run: a version's overrides, or the draft's own config."""

    model = forms.CharField(required=False, max_length=100)
    temperature = forms.FloatField(required=False, min_value=0, max_value=2)
    max_tokens = forms.IntegerField(required=False, min_value=1, max_value=1_000_000, label="Max tokens")
    extra_config = forms.CharField(
        required=False, label="Other settings (JSON)", widget=forms.Textarea(attrs={"rows": 2})
    )

    def clean_extra_config(self) -> dict[str, Any]:
        return json_object(self.cleaned_data["extra_config"], "Other settings")

    def config(self) -> dict[str, Any]:
        """The settings given, as a version's config: `extra_config` merged with the fields that are filled."""
        data = self.cleaned_data
        config = dict(data["extra_config"])
        config.update({k: data[k] for k in ("model", "temperature", "max_tokens") if data.get(k) not in (None, "")})
        return config

    def error_sentence(self) -> str:
        return " ".join(
            f"{self.fields[name].label or name.capitalize()}: {' '.join(str(e) for e in errors)}"
            for name, errors in self.errors.items()
        )
