"""One settings module; production differences come from environment variables.

The defaults run on a laptop with nothing installed: SQLite, no Redis, a Celery
broker on the filesystem, DEBUG on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PROMPTREG_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


DEBUG = envbool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("SECRET_KEY is required when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789"
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",  # its swagger-ui static files, so API docs never load from a CDN
    "simple_history",
    "template_partials",
    "promptreg",
    "experiments",
    "rollout",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The prompt fetch, answered before everything below it that an API-key fetch does not use.
    "rollout.middleware.FetchFirstMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "rollout.middleware.ApiJsonErrorsMiddleware",
]

ROOT_URLCONF = "promptreg.urls"
WSGI_APPLICATION = "promptreg.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "rollout.context_processors.rollback_banner",
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=envint("DB_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web server, worker and beat share the file: WAL lets readers run beside
    # the writer, IMMEDIATE takes the write lock at BEGIN so concurrent
    # writers queue up instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
# Serving: how many fetch answers and key verdicts each server process keeps in memory (LRU), and the
# prefix of its pub/sub invalidation channel (channels are global across Redis DB numbers; the
# default names the DB, so deployments on different DBs of one Redis never hear each other).
SERVING_LOCAL_ENTRIES = envint("SERVING_LOCAL_ENTRIES", 10_000)
REDIS_CHANNEL_PREFIX = os.environ.get("REDIS_CHANNEL_PREFIX", "")

# Change reasons hold evidence (a rollback's means, counts and p-value): keep them whole.
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# static/vendor/plotly/plotly.min.js is plotly.js's "cartesian" bundle (npm plotly.js-cartesian-dist-min), the
# version the plotly package ships (tests/promptreg/test_static.py checks): 1.5 MB instead of the full 4.8 MB bundle,
# which took Chromium 2 s to parse on a busy 2-core machine. It draws scatter, bar, box, histogram, heatmap and pie.
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Production (DEBUG off): hashed names, gzip copies, cached for ever (promptreg/staticfiles.py);
# `collectstatic` must run first (`manage.py up` does it at each start).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "promptreg.staticfiles.CompressedStaticFilesStorage"
    },
}

# The API takes JSON bodies of up to 1 MiB (1,000 scores fit easily); larger
# bodies get a JSON 413 from the API's error handler.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Labels a version takes only through the release gates (review, eval), on every route: label moves,
# experiment and canary starts, ships, the Langfuse API. Comma-separated; a prompt type's review policy
# may protect more (`ReviewPolicy.protected_labels`). `production` is always protected.
PROTECTED_LABELS = sorted(
    {"production"} | {x.strip() for x in os.environ.get("PROTECTED_LABELS", "").split(",") if x.strip()}
)

HTTPS_ONLY = envbool("HTTPS_ONLY", not DEBUG)
if HTTPS_ONLY:
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Celery. With REDIS_URL: Redis broker. Without: the embedded broker
# (promptreg/embedded_broker.py: kombu's filesystem transport with an atomic hand-off and
# redelivery of what a dead worker held), which needs no server, so a laptop
# still runs a real worker and beat.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
if REDIS_URL:
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"visibility_timeout": 3600}
else:
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("queue", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    if CELERY_BROKER_URL == "filesystem://":
        CELERY_BROKER_TRANSPORT = "promptreg.embedded_broker:Transport"
    # The filesystem transport has no fanout exchange: no remote control.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # the default is ./control in whatever folder a process runs
        "store_processed": False,
        "polling_interval": 0.2,  # the default 1 s adds up to a second before a worker sees a task
    }
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
# A running evaluation whose worker has not beaten for this long is taken over by another worker.
EVAL_STALE_SECONDS = envint("EVAL_STALE_SECONDS", 60)
# Every periodic task, in one place. Task names are explicit in each app's tasks.py.
CELERY_BEAT_SCHEDULE = {
    "experiments-analyse-running": {
        "task": "experiments.experiments_snapshot_running",
        "schedule": float(envint("EXPERIMENT_ANALYSIS_SECONDS", 300)),
    },
    # Runs whose worker died are queued again; the run task takes them over.
    "evaluation-resume-stale": {"task": "experiments.evaluation_resume_stale", "schedule": float(EVAL_STALE_SECONDS)},
    # Monitors: beat wakes the dispatcher, which queues each monitor whose own interval has elapsed.
    "rollout-dispatch-monitors": {
        "task": "rollout.tasks.dispatch_monitors",
        "schedule": float(os.environ.get("MONITOR_DISPATCH_SECONDS", "5")),
    },
    "rollout-retry-invalidations": {"task": "rollout.tasks.retry_invalidations", "schedule": 5.0},
    # Work whose publish failed (broker down or slow: see promptreg/broker.py) is queued again by these sweeps.
    "experiments-requeue-runs": {"task": "experiments.evaluation_requeue", "schedule": 10.0},
    "rollout-requeue-deliveries": {"task": "rollout.tasks.requeue_deliveries", "schedule": 10.0},
    # Webhook retries are scheduled in the database; beat queues those that are due.
    "rollout-dispatch-webhooks": {"task": "rollout.tasks.dispatch_webhooks", "schedule": 10.0},
    # Production samples older than their prompt's retention are deleted.
    "experiments-purge-samples": {"task": "experiments.samples_purge", "schedule": 3600.0},
}
# Production samples posted with scores: the share kept (a prompt's sampling policy may set its own), the days
# they are kept, and the largest sample accepted (bytes of its JSON).
SAMPLE_RATE = float(os.environ.get("SAMPLE_RATE", "1.0"))
SAMPLE_RETENTION_DAYS = envint("SAMPLE_RETENTION_DAYS", 30)
SAMPLE_MAX_BYTES = envint("SAMPLE_MAX_BYTES", 32 * 1024)
# Seconds a web request waits for the broker to take a task (any transport); then beat queues it later.
BROKER_PUBLISH_TIMEOUT = float(os.environ.get("BROKER_PUBLISH_TIMEOUT", "2"))

# OpenAI-compatible provider for evaluation runs.
LLM_BASE_URL = os.environ.get("LLM_BASE_URL", "")
LLM_API_KEY = os.environ.get("LLM_API_KEY", "")
LLM_MODEL = os.environ.get("LLM_MODEL", "")
LLM_TIMEOUT = float(os.environ.get("LLM_TIMEOUT", "30"))
LLM_MAX_RETRIES = envint("LLM_MAX_RETRIES", 3)
LLM_BACKOFF = float(os.environ.get("LLM_BACKOFF", "0.5"))
LLM_CONCURRENCY = envint("LLM_CONCURRENCY", 16)
# The playground (try a version or a draft on sample values; `POST /api/v1/prompts/{name}/run`): seconds one call may
# take (no retries), seconds the page waits for a worker to pick a run up before saying so, hours runs are kept.
PLAYGROUND_TIMEOUT = float(os.environ.get("PLAYGROUND_TIMEOUT", "30"))
# Synchronous run API calls at once per web process (each holds a thread; run gunicorn with more threads than this).
PLAYGROUND_API_CONCURRENCY = envint("PLAYGROUND_API_CONCURRENCY", 2)
PLAYGROUND_PICKUP_SECONDS = envint("PLAYGROUND_PICKUP_SECONDS", 15)
PLAYGROUND_KEEP_HOURS = envint("PLAYGROUND_KEEP_HOURS", 24)
# Optional prices in USD per million tokens, per model, for the playground's cost column (unpriced models show no
# cost): '{"gpt-4o-mini": {"input": 0.15, "output": 0.6}}'.
LLM_PRICES: dict[str, dict[str, float]] = json.loads(os.environ.get("LLM_PRICES", "") or "{}")
# CPU seconds a regex scorer may spend on one output; a case whose match runs out fails with a message.
SCORER_REGEX_TIMEOUT = float(os.environ.get("SCORER_REGEX_TIMEOUT", "0.1"))

# Webhook and alert targets that would be refused as internal (loopback, private, link-local, metadata):
# comma-separated host names, addresses or networks (`hooks.internal,10.2.0.0/16`).
ALERT_ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALERT_ALLOWED_HOSTS", "").split(",") if h.strip()]

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "promptreg@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # A 4xx raised as an exception (403, 400) is one line; tracebacks are for 5xx.
    "filters": {"client_errors_without_traceback": {"()": "promptreg.log.ClientErrorWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["client_errors_without_traceback"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO" if DEBUG else "WARNING")},
    "loggers": {"httpx": {"level": "WARNING"}},  # one INFO line per provider call drowns the worker log
}
