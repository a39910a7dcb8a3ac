"""Browser form for creating an experiment or a canary (the API takes the same fields as JSON)."""

from __future__ import annotations

from django import forms

from experiments.models import Direction, ExperimentKind, ExperimentMode, MetricKind


class ExperimentForm(forms.Form):
    prompt = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=ExperimentKind.choices, initial=ExperimentKind.EXPERIMENT)
    label = forms.CharField(max_length=63, initial="production")
    control_version = forms.IntegerField(
        min_value=1, required=False, help_text="Empty: the version the label serves now."
    )
    treatment_version = forms.IntegerField(min_value=1)
    traffic_fraction = forms.FloatField(
        min_value=0.0001,
        max_value=0.9999,
        initial=0.5,
        help_text="Share of sessions that get the treatment (a canary: 0.05).",
    )
    hypothesis = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="What you expect and why, written before any data.",
    )
    primary_metric = forms.CharField(max_length=64, initial="quality_score")
    primary_direction = forms.ChoiceField(choices=Direction.choices, initial=Direction.HIGHER)
    primary_kind = forms.ChoiceField(choices=MetricKind.choices, initial=MetricKind.MEAN)
    guardrails = forms.CharField(
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "latency_ms lower_is_better 50\nthumbs_up higher_is_better 0.02"}
        ),
        required=False,
        help_text="One per line: metric, direction, margin (absolute, in the metric's units).",
    )
    minimum_detectable_effect = forms.FloatField(
        min_value=0, required=False, help_text="Smallest absolute change worth detecting."
    )
    baseline_sd = forms.FloatField(
        min_value=0,
        required=False,
        help_text="Per-session standard deviation; empty: estimated from the control's recent scores.",
    )
    alpha = forms.FloatField(min_value=0.0001, max_value=0.2, initial=0.05)
    power = forms.FloatField(min_value=0.5, max_value=0.99, initial=0.8)
    min_samples_per_variant = forms.IntegerField(min_value=2, initial=100)
    min_runtime_hours = forms.FloatField(
        min_value=0, initial=168, help_text="A full week covers weekday and weekend traffic."
    )
    mode = forms.ChoiceField(choices=ExperimentMode.choices, initial=ExperimentMode.SEQUENTIAL)

    def clean_guardrails(self) -> list[dict]:
        guardrails = []
        for number, line in enumerate(self.cleaned_data["guardrails"].splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise forms.ValidationError(
                    f"Line {number}: write 'metric direction margin', e.g. 'latency_ms lower_is_better 50'."
                )
            metric, direction, margin = parts
            try:
                guardrails.append({"metric": metric, "direction": direction, "margin": float(margin)})
            except ValueError:
                raise forms.ValidationError(f"Line {number}: the margin must be a number.") from None
        return guardrails
