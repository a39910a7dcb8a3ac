"""The automatic-rollback banner, on every dashboard page until someone acknowledges it."""

from __future__ import annotations

from promptreg.permissions import can_deploy
from rollout.models import RollbackIncident


def rollback_banner(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    incidents = list(RollbackIncident.objects.unacknowledged().for_display()[:5])
    return {"open_incidents": incidents, "can_acknowledge": bool(incidents) and can_deploy(user)}
