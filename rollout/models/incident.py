"""Automatic-rollback incidents, and the serving-cache invalidations and key verdicts still to reach Redis."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from experiments.models import Experiment
from promptreg.models import LabelMove, Prompt, PromptVersion
from rollout.models.monitor import Monitor, MonitorCheck


class IncidentQuerySet(models.QuerySet["RollbackIncident"]):
    def unacknowledged(self) -> IncidentQuerySet:
        return self.filter(acknowledged_at__isnull=True)

    def for_display(self) -> IncidentQuerySet:
        """With what `headline` reads."""
        return self.select_related(
            "prompt", "from_version", "move__to_version", "experiment__control_version", "acknowledged_by"
        )


class RollbackIncident(models.Model):
    """An automatic rollback (or a failed attempt at one), shown in a banner until acknowledged.

    Of production, `move` is the label move that rolled back; of a canary,
    `experiment` is the canary that was concluded (all traffic back on its control).
    """

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="incidents")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="rollback_incidents")
    check_run = models.OneToOneField(MonitorCheck, on_delete=models.CASCADE, related_name="incident")
    from_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="+")
    move = models.OneToOneField(LabelMove, null=True, blank=True, on_delete=models.PROTECT, related_name="incident")
    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    reason = models.TextField()
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    objects = IncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.headline

    def acknowledge(self, user) -> bool:
        """Mark seen; a conditional update, so two people clicking at once record the first."""
        changed = RollbackIncident.objects.filter(pk=self.pk, acknowledged_at__isnull=True).update(
            acknowledged_by=user, acknowledged_at=timezone.now()
        )
        return bool(changed)

    @property
    def succeeded(self) -> bool:
        return not self.error

    @property
    def headline(self) -> str:
        if self.experiment_id:
            what = f"{self.prompt.name}: canary of v{self.from_version.number} (canary #{self.experiment_id})"
            if self.succeeded:
                assert self.experiment is not None
                return f"{what} rolled back automatically; all traffic on v{self.experiment.control_version.number}"
            return f"{what}: automatic rollback FAILED — {self.error}"
        if self.succeeded:
            assert self.move is not None, "a production rollback that succeeded moved the label"
            return (
                f"{self.prompt.name}: production rolled back automatically from v{self.from_version.number} to "
                f"v{self.move.to_version.number}"
            )
        return f"{self.prompt.name}: automatic rollback from v{self.from_version.number} FAILED — {self.error}"


class PendingInvalidation(models.Model):
    """A prompt whose serving-cache invalidation could not reach Redis after a change; beat
    retries it (`serving.invalidations_retry`) until it lands, so cached answers from before
    a rollback do not live on for their whole TTL."""

    prompt_name = models.CharField(max_length=200, unique=True)
    since = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"pending invalidation of {self.prompt_name} since {self.since:%Y-%m-%d %H:%M:%S}"


class PendingKeyVerdict(models.Model):
    """An API key whose changed verdict (issued, scopes changed, revoked, deleted) has not reached
    Redis yet; retried with the prompts' `PendingInvalidation`s, and landed by every server
    process before it reads Redis again after a fault, so a revoked key is refused at once."""

    secret_hash = models.CharField(max_length=64, unique=True)
    since = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"pending key verdict {self.secret_hash[:8]}… since {self.since:%Y-%m-%d %H:%M:%S}"
