"""Reactions to other apps' changes."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from experiments.models import Experiment, ExperimentKind, ExperimentState
from promptreg import signals
from rollout.alerts import rollback_alert
from rollout.models import Monitor
from rollout.services import canary_watch


@receiver(post_save, sender=Experiment, dispatch_uid="rollout.watch_started_canary")
def watch_started_canary(sender, instance: Experiment, **kwargs) -> None:
    """A canary starting on a monitored label is watched from its first score, in the same transaction."""
    if instance.kind != ExperimentKind.CANARY or instance.state != ExperimentState.RUNNING:
        return
    parent = Monitor.objects.of_label(instance.prompt_id, instance.label).first()
    if parent is not None and not Monitor.objects.filter(experiment=instance).exists():
        canary_watch(parent, instance)


@receiver(signals.rolled_back, dispatch_uid="rollout.alert_on_rollback")
def alert_on_rollback(sender, move, **kwargs) -> None:
    """Every rollback of a protected label alerts, in the rollback's own transaction."""
    rollback_alert(move)
