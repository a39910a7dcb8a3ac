from django.urls import path

from rollout import views, views_incident, views_webhooks

app_name = "rollout"

urlpatterns = [
    path("", views.oncall, name="oncall"),
    path("channels/", views.channels, name="channels"),
    path("channels/<int:pk>/delete/", views.channel_delete, name="channel-delete"),
    path("webhooks/", views_webhooks.webhook_list, name="webhooks"),
    path("webhooks/<int:pk>/remove/", views_webhooks.webhook_remove, name="webhook-remove"),
    path("webhooks/<int:pk>/test/", views_webhooks.webhook_test, name="webhook-test"),
    path("incidents/<int:pk>/", views_incident.incident_detail, name="incident"),
    path("incidents/<int:pk>/add-to-dataset/", views_incident.incident_add_cases, name="incident-add-cases"),
    path("incidents/<int:pk>/acknowledge/", views.incident_acknowledge, name="incident-acknowledge"),
    path("monitor/<prompt:name>", views.monitor_edit, name="monitor-edit"),
]
