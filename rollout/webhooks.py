"""Webhooks for prompt events: subscriptions, the events they get, and delivery.

An action (publish, review, label move, experiment start/stop/ship, retire,
restore) sends `signals.prompt_event` inside its transaction; `record` (connected in `rollout.receivers`) writes
the event and one delivery per interested subscription in that same
transaction, and queues each delivery for the worker after commit. So an
event is delivered if and only if its action committed.

A delivery is a POST of `WebhookEvent.body()` signed with the subscription's
secret (`X-Promptreg-Signature: sha256=<hex HMAC-SHA256 of the body>`). Any
answer other than 2xx, a timeout or a connection error is retried with
exponential backoff (`retry_delay`) for about a day; the schedule lives in
the database (`next_attempt_at`), and beat's `rollout.tasks.dispatch_webhooks`
queues what is due, so retries survive worker restarts and need no hours-long
broker ETAs; it also sends the first attempts a stalled broker did not take
after commit (`promptreg.broker`).
Each attempt claims the delivery with a conditional update (a lease), so two
workers never send it at the same time. Delivery is at least once: the event
id in the body lets a receiver drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from functools import partial
from typing import Any

import httpx
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from experiments.api_experiments import experiment_json
from promptreg import broker, composition_moves
from promptreg.exceptions import InvalidInput, NotFound
from promptreg.history import set_change_reason
from promptreg.models import Prompt, Scope, validate_prompt_name
from promptreg.services import Actor
from rollout import entries, outbound
from rollout.api_prompts import move_out
from rollout.models import (
    TEST_EVENT,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEvent,
    WebhookEventType,
    WebhookSubscription,
)

log = logging.getLogger(__name__)

EVENTS = tuple(WebhookEventType.values)
MIN_SECRET_CHARS = 16
URL_MAX_CHARS = 2000
TIMEOUT_SECONDS = 10
LEASE = timedelta(seconds=60)  # an attempt that has not finished by then (worker died) is due again
SNIPPET_CHARS = 500
RETRY_BASE_SECONDS = 15
RETRY_MAX_DELAY_SECONDS = 2 * 3600
RETRY_SPAN = timedelta(hours=24)
DISPATCH_BATCH = 500
SIGNATURE_HEADER = "X-Promptreg-Signature"
REMOVED = "the webhook was removed"


def retry_delay(attempts: int) -> timedelta:
    """Wait after the `attempts`-th failed attempt: 15 s, 30 s, 1 min … doubling, at most 2 h."""
    return timedelta(seconds=min(RETRY_BASE_SECONDS * 2 ** (attempts - 1), RETRY_MAX_DELAY_SECONDS))


def _max_attempts() -> int:
    attempts, waited = 1, timedelta(0)
    while waited < RETRY_SPAN:
        waited += retry_delay(attempts)
        attempts += 1
    return attempts


MAX_ATTEMPTS = _max_attempts()  # 21: the last one about 24 h after the first


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- subscriptions --------------------------------------------------------------


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", code=f"invalid_{field}", details={"fields": {field: [message]}})


def _clean(url: str, events: Any, prompts: Any, secret: str) -> tuple[str, list[str], list[str] | None]:
    url = (url or "").strip()
    if len(url) > URL_MAX_CHARS:
        raise _invalid("url", f"At most {URL_MAX_CHARS} characters.")
    try:
        outbound.check_target(url)
    except outbound.TargetRefused as exc:
        raise _invalid("url", str(exc)) from None
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise _invalid("events", "Choose one or more events.")
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise _invalid("events", f"Unknown events: {', '.join(unknown)}; known: {', '.join(EVENTS)}.")
    if prompts is not None:
        if not isinstance(prompts, list) or not prompts:
            raise _invalid("prompts", "Give a list of prompt names, or null for every prompt.")
        for name in prompts:
            try:
                validate_prompt_name(name)
            except (ValidationError, TypeError) as exc:
                raise _invalid(
                    "prompts", f"{name!r} is not a prompt name: " + " ".join(getattr(exc, "messages", [str(exc)]))
                ) from None
        prompts = sorted(set(prompts))
    if len(secret or "") < MIN_SECRET_CHARS:
        raise _invalid(
            "secret", f"The secret must be at least {MIN_SECRET_CHARS} characters (e.g. `openssl rand -hex 32`)."
        )
    return url, [e for e in EVENTS if e in events], prompts


def new_secret() -> str:
    return secrets.token_hex(32)


@transaction.atomic
def webhook_subscribe(*, url: str, events: Any, prompts: Any, secret: str, actor: Actor) -> WebhookSubscription:
    """Create a subscription (Admin role, or an `admin` key); the URL is refused if it points inside."""
    actor.require(Scope.ADMIN, "Managing webhooks")
    url, events, prompts = _clean(url, events, prompts, secret)
    subscription = WebhookSubscription(
        url=url, events=events, prompts=prompts, secret=secret, created_by=actor.user, created_by_key=actor.api_key
    )
    set_change_reason(subscription, f"added by {actor.name}")
    subscription.save()
    return subscription


def _get(subscription_id: int) -> WebhookSubscription:
    found = (
        WebhookSubscription.objects.active()
        .select_related("created_by", "created_by_key")
        .filter(pk=subscription_id)
        .first()
    )
    if found is None:
        raise NotFound(f"No webhook {subscription_id}.", code="webhook_not_found")
    return found


@transaction.atomic
def webhook_remove(*, subscription_id: int, actor: Actor) -> WebhookSubscription:
    """Stop sending to a subscription: no new events, pending retries given up, the secret forgotten.
    The row and its delivery log stay; the history says who removed it."""
    actor.require(Scope.ADMIN, "Managing webhooks")
    subscription = _get(subscription_id)
    subscription.removed_at, subscription.secret = timezone.now(), ""
    set_change_reason(subscription, f"removed by {actor.name}")
    subscription.save()
    subscription.deliveries.filter(status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED, next_attempt_at=None, last_error=REMOVED
    )
    return subscription


@transaction.atomic
def webhook_send_test(*, subscription_id: int, actor: Actor) -> WebhookEvent:
    """Queue a `webhook.test` event to one subscription, delivered (and logged) like any other."""
    actor.require(Scope.ADMIN, "Managing webhooks")
    subscription = _get(subscription_id)
    event = WebhookEvent.objects.create(
        event=TEST_EVENT,
        prompt="",
        data={"message": "Test event from promptreg.", "webhook": subscription.pk, "actor": actor.name},
    )
    _queue(event, [subscription])
    return event


# --- events ---------------------------------------------------------------------


def _event_data(event: str, instance: Any, actor: Actor, reason: str) -> dict[str, Any]:
    """What `data` holds per event: the same shapes the API answers with, plus who and why."""
    if event == WebhookEventType.VERSION_CREATED:
        data = entries.payload(instance, None)
        data.pop("label"), data.pop("experiment")
        return {**data, "tags": sorted(t.name for t in instance.tags.all()), "actor": actor.name}
    if event == WebhookEventType.REVIEW_DECIDED:
        return {
            "version": instance.version.number,
            "decision": instance.decision,
            "comment": instance.comment,
            "status": instance.version.status,
            "actor": actor.name,
            "created_at": instance.created_at,
        }
    if event == WebhookEventType.LABEL_MOVED:
        return move_out(instance)
    if event.startswith("experiment."):
        return {**experiment_json(instance, with_analysis=False), "reason": reason, "actor": actor.name}
    return {"retired_at": instance.retired_at, "reason": reason, "actor": actor.name}  # prompt.retired / restored


def record(*, event: str, prompt: Prompt, instance: Any, actor: Actor, reason: str = "") -> WebhookEvent | None:
    """Record the event for every subscription that wants it, in the action's transaction. A label move also goes to
    the subscriptions of the prompts that include the moved label (their served text changed with it)."""
    names = [prompt.name]
    if event == WebhookEventType.LABEL_MOVED:
        names += sorted({d["name"] for d in composition_moves.move_dependents(instance)})
    subscriptions = [s for s in WebhookSubscription.objects.active() if any(s.wants(event, n) for n in names)]
    if not subscriptions:
        return None
    recorded = WebhookEvent.objects.create(
        event=event, prompt=prompt.name, data=_event_data(event, instance, actor, reason)
    )
    _queue(recorded, subscriptions)
    return recorded


def _queue(event: WebhookEvent, subscriptions: list[WebhookSubscription]) -> None:
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(event=event, subscription=s) for s in subscriptions]
    )
    transaction.on_commit(partial(publish, [d.pk for d in deliveries]))


def publish(delivery_ids: list[int]) -> None:
    """Hand deliveries to the broker, never waiting long on one that stalls: what it does not take
    now, `dispatch_webhooks` queues once it answers."""
    from rollout.tasks import deliver_webhook

    for delivery_id in delivery_ids:
        if not broker.publish(deliver_webhook, delivery_id):
            return


# --- delivery -------------------------------------------------------------------


def _claim(delivery_id: int) -> WebhookDelivery | None:
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    ).update(attempts=F("attempts") + 1, next_attempt_at=now + LEASE)
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("event", "subscription").get(pk=delivery_id)


def _finish(
    delivery: WebhookDelivery, *, ok: bool, final: bool, status: int | None = None, snippet: str = "", error: str = ""
) -> str:
    now = timezone.now()
    if ok:
        outcome, next_at = DeliveryStatus.SENT, None
    elif final or delivery.attempts >= MAX_ATTEMPTS:
        outcome, next_at = DeliveryStatus.FAILED, None
    else:
        outcome, next_at = DeliveryStatus.PENDING, now + retry_delay(delivery.attempts)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=outcome,
        next_attempt_at=next_at,
        response_status=status,
        response_snippet=snippet[:SNIPPET_CHARS],
        last_error=error[:2000],
        sent_at=now if ok else None,
    )
    return outcome


def deliver(delivery_id: int) -> str:
    """One attempt, if the delivery is due and nobody else holds it: 'sent', 'pending' (retry scheduled),
    'failed' (given up, or a target refused as internal) or 'skipped'."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return "skipped"
    event, subscription = delivery.event, delivery.subscription
    if subscription.removed_at is not None:  # removed after this delivery was recorded
        return _finish(delivery, ok=False, final=True, error=REMOVED)
    body = event.body()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "promptreg-webhooks",
        "X-Promptreg-Event": event.event,
        "X-Promptreg-Delivery": str(event.id),
        SIGNATURE_HEADER: sign(subscription.secret, body),
    }
    try:
        response = outbound.post_body(subscription.url, body, timeout=TIMEOUT_SECONDS, headers=headers)
    except outbound.TargetRefused as exc:
        return _finish(delivery, ok=False, final=True, error=f"refused: {exc}")
    except (httpx.HTTPError, OSError) as exc:
        log.warning("webhook delivery %s attempt %s failed: %s", delivery_id, delivery.attempts, exc)
        return _finish(delivery, ok=False, final=False, error=f"{type(exc).__name__}: {exc}")
    ok = 200 <= response.status_code < 300
    error = "" if ok else f"HTTP {response.status_code}"
    return _finish(delivery, ok=ok, final=False, status=response.status_code, snippet=response.text, error=error)


def due() -> list[int]:
    """Deliveries whose next attempt is due: retries, expired leases, and first attempts the
    after-commit publish has not sent within a grace period (the broker did not take them)."""
    now = timezone.now()
    retries = Q(attempts__gt=0, next_attempt_at__lte=now)
    first = Q(attempts=0, next_attempt_at__lte=now - broker.REQUEUE_GRACE)
    pending = WebhookDelivery.objects.filter(retries | first, status=DeliveryStatus.PENDING)
    return list(pending.order_by("next_attempt_at").values_list("pk", flat=True)[:DISPATCH_BATCH])
