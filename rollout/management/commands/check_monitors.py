"""`manage.py check_monitors`: one pass over every enabled monitor (and running canary's), now, whatever its
interval."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from rollout.models import Monitor
from rollout.monitoring import run_check


class Command(BaseCommand):
    help = "Check every enabled monitor once, now (for cron users and tests)."

    def handle(self, *args, **options):
        monitors = Monitor.objects.active().select_related("prompt").order_by("id")
        for monitor in monitors:
            check = run_check(monitor.id)
            if check is None:
                continue  # its canary ended since the query
            action = "" if check.action == "none" else f" → {check.get_action_display().lower()}"
            self.stdout.write(f"{monitor.watches}: {check.outcome}{action}. {check.summary}")
        if not monitors:
            self.stdout.write("No enabled monitors.")
