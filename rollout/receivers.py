"""Reactions to other apps' changes, and to the registry's: every signal receiver of the rollout app."""

from __future__ import annotations

from functools import partial

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from django.test.signals import setting_changed

from experiments.models import Experiment, ExperimentKind, ExperimentState
from promptreg import composition_moves, signals
from promptreg.models import ApiKey
from rollout import serving, webhooks
from rollout.alerts import rollback_alert
from rollout.models import Monitor
from rollout.services import canary_watch
from rollout.serving import remember_api_key

User = get_user_model()


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


def _owner_changed(user_ids) -> None:
    """A key does what its owner may (`ApiKey.has_scope`): when an owner's roles or active flag change, every server
    re-reads the verdicts of their keys from the next request, as after a revocation."""
    for secret_hash in ApiKey.objects.usable().filter(owner_id__in=user_ids).values_list("secret_hash", flat=True):
        transaction.on_commit(partial(remember_api_key, secret_hash))


@receiver(post_save, sender=User, dispatch_uid="rollout.key_owner_saved")
def key_owner_saved(sender, instance, created: bool, update_fields=None, **kwargs) -> None:
    if not created and set(update_fields or ["is_active"]) != {"last_login"}:  # a sign-in changes no role
        _owner_changed([instance.pk])


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="rollout.key_owner_roles")
def key_owner_roles(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    if not reverse and action in ("post_add", "post_remove", "post_clear"):  # user.groups.add(...)
        _owner_changed([instance.pk])
    elif reverse and action in ("post_add", "post_remove"):  # group.user_set.remove(...): the users in pk_set
        _owner_changed(pk_set or [])
    elif reverse and action == "pre_clear":  # group.user_set.clear(): its users, while they are still in it
        _owner_changed(instance.user_set.values_list("pk", flat=True))


@receiver(signals.serving_changed, dispatch_uid="rollout.invalidate_on_serving_change")
def invalidate_on_serving_change(sender: object, prompt_name: str, **kwargs: object) -> None:
    """What a fetch returns changed: its cached answers go, everywhere."""
    # The prompts that include it serve its text too: they go stale with it (read after its commit, so a dependent
    # published meanwhile is either listed here or invalidated by its own publish).
    for name in (prompt_name, *composition_moves.dependents([prompt_name])):
        serving.invalidate_prompt(name)


@receiver(post_save, sender=ApiKey, dispatch_uid="rollout.key_saved")
@receiver(post_delete, sender=ApiKey, dispatch_uid="rollout.key_deleted")
def key_changed(sender: type[ApiKey], instance: ApiKey, **kwargs: object) -> None:
    """A key issued, changed or deleted: every server re-reads its verdict from the next request."""
    transaction.on_commit(partial(remember_api_key, instance.secret_hash))


@receiver(setting_changed, dispatch_uid="rollout.serving_settings_changed")
def serving_settings_changed(setting: str, **kwargs: object) -> None:
    """Tests that override Redis or the per-process copy get fresh connections."""
    if setting in ("REDIS_URL", "REDIS_CHANNEL_PREFIX", "SERVING_LOCAL_ENTRIES"):
        serving.forget_connections()


@receiver(signals.prompt_event, dispatch_uid="rollout.webhooks.record")
def record_webhook_event(sender, event: str, prompt, instance, actor, reason: str = "", **kwargs) -> None:
    """Every registry event a webhook subscription wants is recorded, in the action's transaction."""
    webhooks.record(event=event, prompt=prompt, instance=instance, actor=actor, reason=reason)
