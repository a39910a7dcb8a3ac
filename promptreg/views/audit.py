"""The audit trail pages: global and per prompt. Filters live in the query string, so every view is a link."""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from promptreg.audit import KINDS, AuditFilter, audit_page
from promptreg.views.common import get_prompt

PAGE_SIZE = 50


class AuditFilterForm(forms.Form):
    kind = forms.ChoiceField(required=False, choices=lambda: [("", "Everything"), *KINDS.items()], label="What")
    user = forms.CharField(required=False, label="Who", widget=forms.TextInput(attrs={"placeholder": "username"}))
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))


def _day(value, days: int = 0):
    return timezone.make_aware(datetime.combine(value + timedelta(days=days), time.min)) if value else None


def _render(request, prompt=None):
    form = AuditFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    audit_filter = AuditFilter(
        prompt=prompt,
        kind=data.get("kind", ""),
        user=data.get("user", "").strip(),
        since=_day(data.get("since")),
        until=_day(data.get("until"), days=1),
    )
    page_param = request.GET.get("page", "1")
    page = int(page_param) if page_param.isdigit() and int(page_param) > 0 else 1
    events, total = audit_page(audit_filter, page, PAGE_SIZE)
    query = request.GET.copy()
    query.pop("page", None)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    context = {
        "prompt": prompt,
        "form": form,
        "events": events,
        "total": total,
        "page": page,
        "pages": pages,
        "query": query.urlencode(),
    }
    return render(request, "promptreg/audit.html", context)


@login_required
def audit_list(request):
    return _render(request)


@login_required
def prompt_audit(request, name: str):
    return _render(request, get_prompt(name))
