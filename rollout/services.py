"""Monitor configuration: a label's monitor, and the monitors of its running canaries."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from experiments.models import Experiment, ExperimentKind
from promptreg.exceptions import InvalidInput, NotFound
from promptreg.history import set_change_reason
from promptreg.models import PRODUCTION, Prompt, Scope
from promptreg.services import Actor
from rollout.models import Monitor

CONFIG_FIELDS = (
    "metric",
    "interval_seconds",
    "consecutive_failures",
    "inconclusive_before_page",
    "cooldown_minutes",
    "floor_enabled",
    "floor_threshold",
    "floor_window_minutes",
    "floor_min_samples",
    "relative_enabled",
    "relative_margin",
    "relative_alpha",
    "relative_window_minutes",
    "relative_min_samples",
    "enabled",
)


def monitor_configure(*, name: str, actor: Actor, changes: dict, label: str = PRODUCTION) -> Monitor:
    """Create or change the monitor of `label` (production by default) from flat field values;
    the monitors of the label's running canaries take the same rules.

    Everything is validated before anything is saved: a bad value raises
    InvalidInput naming each field, and the stored monitor stays as it was.
    """
    actor.require(Scope.DEPLOY, "Configuring a monitor")
    unknown = sorted(set(changes) - set(CONFIG_FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown monitor settings: {', '.join(unknown)}.", code="invalid_monitor")
    with transaction.atomic():
        prompt = Prompt.objects.filter(name=name).first()
        if prompt is None:
            raise NotFound(f"No prompt named '{name}'.", code="prompt_not_found")
        # Monitors before the prompt, the order a check takes them in (its rollback locks the prompt);
        # the prompt lock then serialises with canary starts and with a concurrent first configuration.
        list(Monitor.objects.select_for_update(no_key=True).filter(prompt=prompt, label=label).order_by("id"))
        Prompt.objects.select_for_update().filter(pk=prompt.pk).first()
        monitor = Monitor.objects.of_label(prompt, label).first() or Monitor(prompt=prompt, label=label)
        monitor.configure(changes)
        try:
            monitor.full_clean(exclude=["prompt", "watched_version", "parent", "experiment"])
        except ValidationError as exc:
            fields = {f: msgs for f, msgs in exc.message_dict.items()}
            first_field, messages = next(iter(fields.items()))
            raise InvalidInput(
                f"{first_field}: {messages[0]}", code="invalid_monitor", details={"fields": fields}
            ) from None
        set_change_reason(monitor, f"configured by {actor.name}")
        monitor.save()
        canaries = Experiment.objects.running().filter(prompt=prompt, label=label, kind=ExperimentKind.CANARY)
        for experiment in canaries.select_related("treatment_version"):
            canary_watch(monitor, experiment)
    return monitor


def canary_watch(parent: Monitor, experiment: Experiment) -> Monitor:
    """Create or update the monitor of a running canary with its label monitor's rules."""
    canary = Monitor.objects.filter(experiment=experiment).first() or Monitor(
        prompt_id=parent.prompt_id,
        label=parent.label,
        parent=parent,
        experiment=experiment,
        watched_version=experiment.treatment_version,
    )
    canary.configure({f: getattr(parent, f) for f in CONFIG_FIELDS})
    set_change_reason(canary, f"rules of the {parent.label} monitor")
    canary.save()
    return canary
