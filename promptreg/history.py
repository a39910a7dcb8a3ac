"""simple-history keeps a change reason in a 100-character column. Reasons can be longer
(a label move's reason, "retired: …"); PostgreSQL would refuse them with a 500, so the
history row keeps the first 100 characters. The full text lives where it matters
(`LabelMove.reason`, `Experiment.end_reason`)."""

from __future__ import annotations

from django.dispatch import receiver
from simple_history.signals import pre_create_historical_record


@receiver(pre_create_historical_record)
def fit_change_reason(sender, history_instance, **kwargs) -> None:
    reason = history_instance.history_change_reason
    limit = history_instance._meta.get_field("history_change_reason").max_length
    if reason and limit and len(reason) > limit:
        history_instance.history_change_reason = reason[: limit - 1] + "…"
