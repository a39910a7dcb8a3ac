"""Dashboard forms. They check input and shape it for the services; the services decide."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q

from promptreg.exceptions import json_problem
from promptreg.models import (
    Prompt,
    PromptKind,
    PromptType,
    PromptVersion,
    Tag,
    validate_prompt_name,
)
from promptreg.samples import samples_from_post
from promptreg.services import MAX_BODY_CHARS
from promptreg.storable import parse_json
from promptreg.templating import Template, normalize_newlines

STATUS_CHOICES = [
    ("", "Active"),
    ("live", "Live in production"),
    ("not-live", "Not in production"),
    ("in-review", "Waiting for review"),
    ("retired", "Retired"),
    ("all", "All, including retired"),
]


class PromptFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, description or prompt text"}),
    )
    type = forms.ChoiceField(required=False, choices=[("", "Any type"), *PromptType.choices])
    tag = forms.ModelChoiceField(
        required=False, queryset=Tag.objects.all(), to_field_name="name", empty_label="Any tag"
    )
    owner = forms.ModelChoiceField(
        required=False,
        queryset=get_user_model().objects.order_by("username"),
        to_field_name="username",
        empty_label="Any owner",
    )
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES)

    def filter(self, prompts):
        data = self.cleaned_data
        status = data.get("status") or ""
        if status == "retired":
            prompts = prompts.filter(retired_at__isnull=False)
        elif status != "all":
            prompts = prompts.active()
        if status == "live":
            prompts = prompts.filter(production_number__isnull=False)
        elif status == "not-live":
            prompts = prompts.filter(production_number__isnull=True)
        elif status == "in-review":
            prompts = prompts.filter(pending_reviews__gt=0)
        if data.get("type"):
            prompts = prompts.filter(prompt_type=data["type"])
        if data.get("tag"):
            prompts = prompts.with_tag(data["tag"].name)
        if data.get("owner"):
            prompts = prompts.filter(owner=data["owner"])
        if data.get("q"):
            q = data["q"].strip()
            text_match = PromptVersion.objects.filter(prompt=OuterRef("pk"), body__icontains=q)
            prompts = prompts.filter(Q(name__icontains=q) | Q(description__icontains=q) | Exists(text_match))
        return prompts


def json_object(value: str, what: str) -> dict[str, Any]:
    value = (value or "").strip()
    if not value:
        return {}
    try:
        parsed = parse_json(value, what)
    except json.JSONDecodeError as exc:
        raise ValidationError(json_problem(what, exc)) from None
    except ValueError as exc:
        raise ValidationError(f"{exc}.") from None
    if not isinstance(parsed, dict):
        raise ValidationError(f'{what} must be a JSON object, like {{"key": "value"}}.')
    return parsed


def rows_from_data(data) -> list[dict[str, str]]:
    """Chat message rows from the posted `msg-N-*` fields, in N order."""
    indexes = sorted({int(k.split("-")[1]) for k in data if k.startswith("msg-") and k.split("-")[1].isdigit()})
    rows = []
    for i in indexes:
        rows.append(
            {
                "type": data.get(f"msg-{i}-type", "message"),
                "role": data.get(f"msg-{i}-role", "user"),
                "content": data.get(f"msg-{i}-content", ""),
                "name": data.get(f"msg-{i}-name", ""),
            }
        )
    return rows


def rows_from_body(body: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {"type": "placeholder", "role": "", "content": "", "name": m.get("name", "")}
        if m.get("type") == "placeholder"
        else {"type": "message", "role": m.get("role", "user"), "content": m.get("content", ""), "name": ""}
        for m in body
    ]


def apply_row_op(rows: list[dict[str, str]], op: str) -> list[dict[str, str]]:
    """Add, remove or move a chat row: `add`, `add-placeholder`, `remove-N`, `up-N`, `down-N`."""
    rows = list(rows)
    if op == "add":
        rows.append({"type": "message", "role": "user", "content": "", "name": ""})
    elif op == "add-placeholder":
        rows.append({"type": "placeholder", "role": "", "content": "", "name": "history"})
    else:
        action, _, index = op.partition("-")
        if not index.isdigit() or int(index) >= len(rows):
            return rows
        i = int(index)
        if action == "remove":
            rows.pop(i)
        elif action == "up" and i > 0:
            rows[i - 1], rows[i] = rows[i], rows[i - 1]
        elif action == "down" and i < len(rows) - 1:
            rows[i + 1], rows[i] = rows[i], rows[i + 1]
    return rows


def body_from_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [
        {"type": "placeholder", "name": r["name"].strip()}
        if r["type"] == "placeholder"
        else {"role": r["role"], "content": r["content"]}
        for r in rows
    ]


def posted_body(data) -> tuple[str, Any]:
    """(kind, body) of the template as posted right now by the authoring form."""
    kind = data.get("kind", PromptKind.TEXT)
    if kind == PromptKind.CHAT:
        return kind, body_from_rows(rows_from_data(data))
    return kind, normalize_newlines(data.get("text", ""))


def too_long_message(what: str, size: int) -> str:
    """`what` carries its verb ("The prompt text is"): said in the form and in the live panel as you paste."""
    return (
        f"{what} {size:,} characters long; the limit is {MAX_BODY_CHARS:,} characters. Nothing was cut: shorten it "
        f"to save."
    )


class VersionForm(forms.Form):
    """A new version (and, for a new prompt, the prompt itself). Nothing is saved unless all of it is valid."""

    name = forms.CharField(
        max_length=200, required=False, help_text="Lowercase, hyphens, {feature}-{role}: e.g. customer-support-system."
    )
    prompt_type = forms.ChoiceField(choices=PromptType.choices, label="Prompt type")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    tags = forms.CharField(required=False, help_text="Comma-separated, e.g. support, billing.")
    kind = forms.ChoiceField(
        choices=PromptKind.choices, widget=forms.RadioSelect, initial=PromptKind.TEXT, label="Format"
    )
    # No max_length: it would become the textarea's `maxlength`, and the browser silently cuts a longer paste.
    text = forms.CharField(
        required=False,
        strip=False,
        label="Prompt text",
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
    )
    model = forms.CharField(required=False, max_length=100, help_text="e.g. gpt-4o-mini")
    temperature = forms.FloatField(required=False, min_value=0, max_value=2)
    max_tokens = forms.IntegerField(required=False, min_value=1, max_value=1_000_000, label="Max tokens")
    extra_config = forms.CharField(
        required=False, label="Other settings (JSON)", widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"})
    )
    commit_message = forms.CharField(
        label="Reason for the change",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What changed and why. Reviewers read this first.",
    )
    purpose = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="What this prompt is for."
    )
    known_edge_cases = forms.CharField(
        required=False, label="Known edge cases", widget=forms.Textarea(attrs={"rows": 2})
    )
    samples_as_json = forms.BooleanField(required=False, label="Edit as JSON (advanced)")
    sample_values = forms.CharField(
        required=False,
        label="Sample values as JSON",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text='One entry per variable, e.g. {"customer_name": "Ada"}; a chat placeholder takes a list of {"role", '
        '"content"} messages.',
    )
    expected_latest = forms.IntegerField(required=False, widget=forms.HiddenInput)
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, prompt: Prompt | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.prompt = prompt
        self.rows = rows_from_data(self.data) if self.is_bound else []
        if prompt is not None:
            del self.fields["name"]
        else:
            self.fields["name"].required = True

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        validate_prompt_name(name)
        if Prompt.objects.filter(name=name).exists():
            raise ValidationError(f"A prompt named '{name}' already exists: open it and create a new version instead.")
        return name

    def clean_extra_config(self) -> dict[str, Any]:
        return json_object(self.cleaned_data["extra_config"], "Other settings")

    def clean_sample_values(self) -> dict[str, Any]:
        values, error = samples_from_post(self.data)
        if error:
            raise ValidationError(error)
        return values

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None, "Form.clean returns the cleaned data"
        kind = data.get("kind")
        if kind == PromptKind.TEXT:
            body: Any = normalize_newlines(data.get("text", ""))
            if "text" in data and not body.strip():
                self.add_error("text", "The prompt text is empty.")
            elif len(body) > MAX_BODY_CHARS:
                self.add_error("text", too_long_message("The prompt text is", len(body)))
        elif kind == PromptKind.CHAT:
            body = normalize_newlines(body_from_rows(self.rows))
            size = sum(len(m.get("content", "")) for m in body)
            if size > MAX_BODY_CHARS:
                self.add_error(None, too_long_message("The messages are", size))
        else:
            return data
        if not self.errors.get("text"):
            problems = Template(kind, body).problems()
            if problems:
                self.add_error("text" if kind == PromptKind.TEXT else None, problems)
        data["body"] = body
        return data

    def publish_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        config = dict(data["extra_config"])
        for key in ("model", "temperature", "max_tokens"):
            if data.get(key) not in (None, ""):
                config[key] = data[key]
        return {
            "name": self.prompt.name if self.prompt else data["name"],
            "kind": data["kind"],
            "body": data["body"],
            "config": config,
            "commit_message": data["commit_message"],
            "purpose": data["purpose"],
            "known_edge_cases": data["known_edge_cases"],
            "prompt_type": data["prompt_type"],
            "description": data["description"],
            "tags": [t for t in data["tags"].split(",") if t.strip()],
            "parent_number": data.get("parent"),
            "expected_latest": data.get("expected_latest") if self.prompt else None,
            "sample_values": data["sample_values"],
        }

    @classmethod
    def initial_from(cls, prompt: Prompt, version: PromptVersion | None, latest_number: int) -> dict[str, Any]:
        initial: dict[str, Any] = {
            "prompt_type": prompt.prompt_type,
            "description": prompt.description,
            "tags": ", ".join(t.name for t in prompt.tags.all()),
            "expected_latest": latest_number,
        }
        if version is None:
            return initial
        config = dict(version.config or {})
        initial.update(
            {
                "kind": version.kind,
                "text": version.body if version.kind == PromptKind.TEXT else "",
                "model": config.pop("model", ""),
                "temperature": config.pop("temperature", None),
                "max_tokens": config.pop("max_tokens", None),
                "extra_config": json.dumps(config, indent=2, ensure_ascii=False) if config else "",
                "purpose": version.purpose,
                "known_edge_cases": version.known_edge_cases,
                "sample_values": json.dumps(version.sample_values, indent=2, ensure_ascii=False)
                if version.sample_values
                else "",
                "parent": version.number,
            }
        )
        return initial


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("request_changes", "Request changes"), ("comment", "Comment")]
    )
    comment = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="Recorded in the audit trail.")
    expected_current = forms.IntegerField(required=False, widget=forms.HiddenInput)
    override = forms.BooleanField(required=False, label="Override the missing gates (admin; recorded)")


class LabelMoveForm(forms.Form):
    """Point a label (staging, canary, any custom name; production too) at a version, with a reason."""

    label = forms.CharField(
        max_length=63,
        widget=forms.TextInput(attrs={"list": "known-labels", "autocomplete": "off"}),
        help_text="An existing label or a new one: lowercase letters, digits, '-', '_', '.'.",
    )
    version = forms.TypedChoiceField(coerce=int, choices=())
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), help_text="Recorded in the label's history and the audit trail."
    )
    override = forms.BooleanField(required=False, label="Override the missing gates (admin; recorded)")

    def __init__(self, *args: Any, numbers: list[int], **kwargs: Any):
        super().__init__(*args, **kwargs)
        field = self.fields["version"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [(n, f"v{n}") for n in numbers]

    def clean_label(self) -> str:
        return self.cleaned_data["label"].strip().lower()
