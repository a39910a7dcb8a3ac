"""The one place that sets simple-history's change reason, typed."""

from __future__ import annotations

from django.db import models


def set_change_reason(instance: models.Model, reason: str) -> None:
    """The reason simple-history records with the next save of `instance`."""
    instance._change_reason = reason  # type: ignore[attr-defined]  # simple-history's hook: the library is untyped
