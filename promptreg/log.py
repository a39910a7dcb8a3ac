"""Logging filters: logs that say what happened, without the noise.

- `ClientErrorWithoutTraceback`: Django logs a 403 or 400 raised as an exception
  (PermissionDenied, SuspiciousOperation…) with its traceback. A client's mistake
  is one line; tracebacks are for 5xx.
- `QuietRoutineTasks`: beat queues housekeeping tasks every few seconds; their
  "Sending due task", "received" and "succeeded" lines at INFO drowned the log
  (6 lines every 5 s). Those lines go; their warnings and errors, and every line
  of the other tasks, stay.
"""

from __future__ import annotations

import logging
from typing import Any, cast

# Besides every task in the beat schedule: the check the monitor dispatcher queues for each monitor.
ROUTINE_TASKS_OUTSIDE_BEAT = frozenset({"rollout.tasks.check_monitor"})


def routine_tasks() -> frozenset[str]:
    from django.conf import settings

    schedule: dict[str, dict[str, Any]] = settings.CELERY_BEAT_SCHEDULE
    return frozenset(entry["task"] for entry in schedule.values()) | ROUTINE_TASKS_OUTSIDE_BEAT


class ClientErrorWithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True


def _task_name(record: logging.LogRecord) -> str | None:
    args = record.args
    if isinstance(args, dict):  # the worker: "Task %(name)s[%(id)s] received / succeeded …"
        return cast("str | None", args.get("name"))
    if isinstance(args, tuple) and len(args) == 2:  # beat: "Scheduler: Sending due task %s (%s)"
        return cast("str | None", args[1])
    return None


class QuietRoutineTasks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or _task_name(record) not in routine_tasks()


def install_task_filters() -> None:
    """Attach to the loggers themselves, so the filter survives Celery replacing the handlers."""
    quiet = QuietRoutineTasks()
    for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace"):
        logging.getLogger(name).addFilter(quiet)
