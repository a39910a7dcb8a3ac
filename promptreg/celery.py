"""Celery app, per Celery's Django guide: `celery -A promptreg worker` / `celery -A promptreg beat`."""

import os

from celery import Celery

from promptreg.log import install_task_filters

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "promptreg.settings")

app = Celery("promptreg")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
install_task_filters()
