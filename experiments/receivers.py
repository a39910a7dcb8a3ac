"""Reactions to registry signals."""

from __future__ import annotations

from django.dispatch import receiver

from experiments.evaluation import evaluation_on_submit
from promptreg.signals import version_submitted


@receiver(version_submitted, dispatch_uid="experiments.evaluate_on_submit")
def evaluate_on_submit(sender, version, **kwargs) -> None:
    """Compare a version submitted for review with production, where its prompt has a dataset."""
    evaluation_on_submit(version)
