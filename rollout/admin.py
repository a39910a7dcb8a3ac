from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from rollout.models import (
    RUN_STATE_FIELDS,
    Alert,
    AlertChannel,
    AlertDelivery,
    Monitor,
    MonitorCheck,
    PendingInvalidation,
    RollbackIncident,
)


@admin.register(Monitor)
class MonitorAdmin(SimpleHistoryAdmin):
    list_display = (
        "prompt",
        "label",
        "experiment",
        "metric",
        "interval_seconds",
        "enabled",
        "state",
        "last_checked_at",
    )
    list_filter = ("enabled", "state", "metric")
    readonly_fields = ("parent", "experiment", *RUN_STATE_FIELDS)


@admin.register(AlertChannel)
class AlertChannelAdmin(SimpleHistoryAdmin):
    list_display = ("name", "kind", "target", "min_severity", "enabled")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened: never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MonitorCheck)
class MonitorCheckAdmin(ReadOnlyAdmin):
    list_display = ("monitor", "version", "created_at", "outcome", "action")
    list_filter = ("outcome", "action")


@admin.register(RollbackIncident)
class RollbackIncidentAdmin(ReadOnlyAdmin):
    list_display = ("prompt", "from_version", "move", "experiment", "created_at", "acknowledged_by", "acknowledged_at")


@admin.register(PendingInvalidation)
class PendingInvalidationAdmin(ReadOnlyAdmin):
    list_display = ("prompt_name", "since")


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("title", "kind", "severity", "created_at")
    list_filter = ("kind", "severity")


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("alert", "channel", "status", "attempts", "sent_at")
    list_filter = ("status",)
