"""Forms for datasets and cases: they parse the JSON fields; the services validate and decide."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from experiments.models.evaluation import Dataset
from promptreg.exceptions import json_problem

SCORERS_HELP = (
    'A JSON list, e.g. ["exact_match", {"name": "contains_all", "keywords": ["refund"], "required": true}, '
    '{"name": "llm_judge", "rubric": "Polite and correct"}]. Scorers: exact_match, contains_all, contains_any, regex, '
    "json_valid, json_schema, length_window, reference_f1, llm_judge."
)


def _json(value: str, what: str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ValidationError(json_problem(what, exc)) from None


class DatasetForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    scorers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text=SCORERS_HELP,
        initial='["exact_match", "reference_f1"]',
    )
    primary_metric = forms.CharField(
        required=False,
        max_length=64,
        help_text="Empty: quality_score is the mean of all scorers. Or one scorer's metric name.",
    )

    def clean_scorers(self) -> Any:
        return _json(self.cleaned_data["scorers"], "Scorers")

    @classmethod
    def for_dataset(cls, dataset: Dataset) -> DatasetForm:
        return cls(
            initial={
                "name": dataset.name,
                "description": dataset.description,
                "scorers": json.dumps(dataset.scorers, indent=1),
                "primary_metric": dataset.primary_metric,
            }
        )


class CaseForm(forms.Form):
    variables = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text='A JSON object, e.g. {"query": "Where is my refund?"}',
    )
    expected = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Expected output or reference (optional)."
    )
    tags = forms.CharField(required=False, help_text="Comma-separated.")

    def clean_variables(self) -> Any:
        return _json(self.cleaned_data["variables"], "Variables")

    def clean_tags(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data["tags"].split(",") if t.strip()]

    @classmethod
    def for_case(cls, case) -> CaseForm:
        return cls(
            initial={
                "variables": json.dumps(case.variables, indent=1, ensure_ascii=False),
                "expected": case.expected,
                "tags": ", ".join(case.tags),
            }
        )


class UploadForm(forms.Form):
    file = forms.FileField(
        help_text="CSV (a header row; columns are variables, plus optional 'expected' and 'tags') or JSONL (one "
        '{"variables", "expected", "tags"} object per line).'
    )
    replace = forms.BooleanField(required=False, label="Replace the current cases")


class PromptDatasetForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all(), required=False, empty_label="No dataset")
