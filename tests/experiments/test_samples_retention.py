"""Samples are purged after their retention: the setting's default, or the prompt's own; beat runs the purge."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from django.conf import settings as django_settings
from django.utils import timezone

from experiments.models import Sample, Score
from experiments.samples import sampling_configure
from experiments.tasks import samples_purge
from promptreg.models import MoveVia
from promptreg.services import Actor
from tests.experiments.samples_helpers import make_sample


def test_purge_after_retention(publish, settings):
    settings.SAMPLE_RETENTION_DAYS = 30
    kept_long = publish()
    kept_short = publish(name="billing-system")
    sampling_configure(prompt=kept_short.prompt, actor=Actor(via=MoveVia.CLI), rate=1.0, retention_days=7)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        old_default = make_sample(kept_long, {"name": "a"}, "old")
        make_sample(kept_short, {"name": "b"}, "old")
    with time_machine.travel(start + timedelta(days=6), tick=False):
        young_short = make_sample(kept_short, {"name": "c"}, "young")

    with time_machine.travel(start + timedelta(days=7, minutes=1), tick=False):
        assert samples_purge() == 1  # the task beat runs
    assert set(Sample.objects.values_list("pk", flat=True)) == {old_default.pk, young_short.pk}

    with time_machine.travel(start + timedelta(days=30, minutes=1), tick=False):
        assert samples_purge() == 2
    assert not Sample.objects.exists()
    assert Score.objects.count() == 3  # scores are not samples: monitors and experiments keep theirs


def test_beat_runs_the_purge():
    entry = django_settings.CELERY_BEAT_SCHEDULE["experiments-purge-samples"]
    assert entry["task"] == samples_purge.name == "experiments.samples_purge"
