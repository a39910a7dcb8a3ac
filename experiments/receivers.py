"""Reactions to registry signals."""

from __future__ import annotations

from django.dispatch import receiver

from experiments.evaluation import evaluation_on_submit
from experiments.services import stop_on_foreign_label_move
from promptreg.signals import label_moved, version_submitted


@receiver(version_submitted, dispatch_uid="experiments.evaluate_on_submit")
def evaluate_on_submit(sender, version, **kwargs) -> None:
    """Compare a version submitted for review with production, where its prompt has a dataset."""
    evaluation_on_submit(version)


@receiver(label_moved, dispatch_uid="experiments.stop_on_foreign_label_move")
def stop_experiments_on_label_move(sender, move, **kwargs) -> None:
    """An experiment whose label was moved to another version under it no longer tests what serves: stop it."""
    stop_on_foreign_label_move(move.prompt_id, move.label, move.to_version_id)
