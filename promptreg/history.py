"""The one place that sets simple-history's per-save hooks (change reason, acting user), typed."""

from __future__ import annotations

from typing import Any

from django.db import models


def set_change_reason(instance: models.Model, reason: str, *, user: Any = None) -> None:
    """The reason simple-history records with the next save of `instance`; `user`, when given, is the record's
    acting user (the audit trail's "who"), also when no request is behind the change."""
    instance._change_reason = reason  # type: ignore[attr-defined]  # simple-history's hook: the library is untyped
    if user is not None:
        instance._history_user = user  # type: ignore[attr-defined]  # the same, for the acting user
