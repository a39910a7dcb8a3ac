"""`/api/v1/webhooks`: subscribe to prompt events, list and remove subscriptions, send a test event (admin scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from promptreg.api_auth import ApiKeyAuth, api_actor
from promptreg.models import Scope
from rollout import webhooks
from rollout.models import WebhookSubscription

router = Router(tags=["webhooks"])


class WebhookIn(Schema):
    url: str = Field(
        description="Where events are POSTed; internal addresses are refused unless in ALERT_ALLOWED_HOSTS."
    )
    events: list[str] = Field(description="Any of: " + ", ".join(webhooks.EVENTS) + ".")
    prompts: list[str] | None = Field(
        None, description="Only these prompts' events; null (the default) for every prompt."
    )
    secret: str = Field(
        description=f"Signs every body (at least {webhooks.MIN_SECRET_CHARS} characters); never shown again."
    )


class WebhookOut(Schema):
    id: int
    url: str
    events: list[str]
    prompts: list[str] | None
    created_by: str
    created_at: datetime


class WebhookListOut(Schema):
    data: list[WebhookOut]


class EventOut(Schema):
    """A delivery's body, as the receiver gets it."""

    id: str
    event: str
    created_at: datetime
    prompt: str | None
    data: dict[str, Any]


@router.post(
    "/webhooks", auth=ApiKeyAuth(Scope.ADMIN), response={201: WebhookOut}, summary="Subscribe a URL to prompt events"
)
def create_webhook(request: HttpRequest, body: WebhookIn):
    subscription = webhooks.webhook_subscribe(
        url=body.url, events=body.events, prompts=body.prompts, secret=body.secret, actor=api_actor(request)
    )
    return Status(201, subscription.to_dict())


@router.get("/webhooks", auth=ApiKeyAuth(Scope.ADMIN), response=WebhookListOut, summary="List webhook subscriptions")
def list_webhooks(request: HttpRequest):
    return {
        "data": [
            s.to_dict() for s in WebhookSubscription.objects.active().select_related("created_by", "created_by_key")
        ]
    }


@router.delete(
    "/webhooks/{int:webhook_id}",
    auth=ApiKeyAuth(Scope.ADMIN),
    response=WebhookOut,
    summary="Remove a webhook subscription",
    description="Nothing more is sent to it; retries still pending are given up.",
)
def delete_webhook(request: HttpRequest, webhook_id: int):
    return webhooks.webhook_remove(subscription_id=webhook_id, actor=api_actor(request)).to_dict()


@router.post(
    "/webhooks/{int:webhook_id}/test",
    auth=ApiKeyAuth(Scope.ADMIN),
    response={202: EventOut},
    summary="Send a test event",
    description="Queues a `webhook.test` event to this subscription only; the answer is the body it will get.",
)
def test_webhook(request: HttpRequest, webhook_id: int):
    event = webhooks.webhook_send_test(subscription_id=webhook_id, actor=api_actor(request))
    return Status(202, event.envelope())
