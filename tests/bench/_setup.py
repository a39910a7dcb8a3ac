"""Shared set-up for the benchmark scripts: Django on a throwaway test database."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "promptreg.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

settings.DEBUG = False  # no query log growing in memory, as in production


@contextlib.contextmanager
def throwaway_database():
    """Create `test_<name>`, migrate it, and drop it afterwards (the real database is never touched)."""
    if connection.vendor != "postgresql":
        print(f"note: running on {connection.vendor}; the figures in the README are PostgreSQL's (set DATABASE_URL)")
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def fixture_experiment(fraction: float = 0.5):
    """A prompt with v1 live, v2 as treatment, a running experiment, and a write key."""
    from experiments.creation import experiment_create
    from experiments.services import experiment_start
    from promptreg.models import ApiKey, MoveVia, ReviewPolicy
    from promptreg.services import Actor, label_move, version_publish

    cli = Actor(via=MoveVia.CLI)
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    for body in ("Hello {{ name }}", "Hi {{ name }}"):
        version_publish(name="bench-system", kind="text", body=body, commit_message="bench", actor=cli)
    label_move(name="bench-system", label="production", version=1, actor=cli, reason="bench")
    experiment = experiment_create(
        actor=cli,
        prompt="bench-system",
        control_version=1,
        treatment_version=2,
        traffic_fraction=fraction,
        guardrails=[{"metric": "latency_ms", "direction": "lower_is_better", "margin": 50}],
    )
    experiment = experiment_start(experiment_id=experiment.pk, actor=cli)
    _, secret = ApiKey.issue(name="bench", scopes=["write", "read"])
    return experiment, secret
