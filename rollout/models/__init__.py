"""Quality monitors, their checks, automatic-rollback incidents, alerts, and webhook subscriptions and deliveries."""

from rollout.models.alerts import (
    SEVERITY_RANK,
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertKind,
    ChannelKind,
    DeliveryStatus,
    Severity,
)
from rollout.models.incident import IncidentQuerySet, PendingInvalidation, PendingKeyVerdict, RollbackIncident
from rollout.models.monitor import (
    METRICS,
    MIN_INTERVAL_SECONDS,
    CheckAction,
    CheckQuerySet,
    MetricSpec,
    Monitor,
    MonitorCheck,
    MonitorQuerySet,
    MonitorState,
    Outcome,
)
from rollout.models.webhooks import (
    TEST_EVENT,
    WebhookDelivery,
    WebhookEvent,
    WebhookEventType,
    WebhookSubscription,
    WebhookSubscriptionQuerySet,
)

__all__ = [
    "MIN_INTERVAL_SECONDS",
    "MetricSpec",
    "METRICS",
    "MonitorState",
    "MonitorQuerySet",
    "Monitor",
    "Outcome",
    "CheckAction",
    "CheckQuerySet",
    "MonitorCheck",
    "IncidentQuerySet",
    "RollbackIncident",
    "PendingInvalidation",
    "PendingKeyVerdict",
    "ChannelKind",
    "Severity",
    "SEVERITY_RANK",
    "AlertChannel",
    "AlertKind",
    "Alert",
    "DeliveryStatus",
    "AlertDelivery",
    "WebhookEventType",
    "TEST_EVENT",
    "WebhookSubscriptionQuerySet",
    "WebhookSubscription",
    "WebhookEvent",
    "WebhookDelivery",
]
