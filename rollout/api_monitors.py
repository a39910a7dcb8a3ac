"""`PUT /api/v1/prompts/{name}/monitor`: the quality monitor of the production label, as code."""

from __future__ import annotations

from ninja import Router, Schema

from promptreg.api_auth import ApiKeyAuth, api_actor
from promptreg.exceptions import NotFound
from promptreg.models import PRODUCTION
from rollout.models import Monitor
from rollout.services import monitor_configure

router = Router(tags=["monitors"])


class FloorIn(Schema):
    threshold: float
    window_minutes: float = 15
    min_samples: int = 20


class RelativeIn(Schema):
    margin: float = 0.03
    alpha: float = 0.01
    window_minutes: float = 15
    min_samples: int = 30


class MonitorIn(Schema):
    metric: str = "quality_score"
    interval_seconds: int = 60
    consecutive_failures: int = 2
    floor: FloorIn | None = None
    relative: RelativeIn | None = None
    enabled: bool = True
    inconclusive_before_page: int = 10
    cooldown_minutes: int = 30


def _flatten(body: MonitorIn) -> dict:
    """The nested JSON body as the model's flat fields; a null rule is a disabled rule."""
    changes = body.dict(exclude={"floor", "relative"})
    changes["floor_enabled"] = body.floor is not None
    changes["relative_enabled"] = body.relative is not None
    for rule in ("floor", "relative"):
        for key, value in (getattr(body, rule).dict() if getattr(body, rule) else {}).items():
            changes[f"{rule}_{key}"] = value
    return changes


@router.put(
    "/prompts/{prompt:name}/monitor",
    auth=ApiKeyAuth("deploy"),
    response=dict,
    summary="Create or replace the production monitor",
)
def monitor_put(request, name: str, body: MonitorIn):
    monitor = monitor_configure(name=name, actor=api_actor(request), changes=_flatten(body))
    return monitor.to_dict()


@router.get(
    "/prompts/{prompt:name}/monitor",
    auth=ApiKeyAuth("read"),
    response=dict,
    summary="The production monitor and its last checks, with its running canaries' monitors",
)
def monitor_get(request, name: str):
    monitor = (
        Monitor.objects.of_labels()
        .select_related("prompt", "watched_version")
        .filter(prompt__name=name, label=PRODUCTION)
        .first()
    )
    if monitor is None:
        raise NotFound(f"'{name}' has no production monitor.", code="monitor_not_found")
    return monitor.to_dict()
