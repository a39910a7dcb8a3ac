from django.urls import path

from rollout import views

app_name = "rollout"

urlpatterns = [
    path("", views.oncall, name="oncall"),
    path("channels/", views.channels, name="channels"),
    path("channels/<int:pk>/delete/", views.channel_delete, name="channel-delete"),
    path("incidents/<int:pk>/acknowledge/", views.incident_acknowledge, name="incident-acknowledge"),
    path("monitor/<prompt:name>", views.monitor_edit, name="monitor-edit"),
]
