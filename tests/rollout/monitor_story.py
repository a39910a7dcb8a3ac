"""Helpers for monitor tests: a prompt with v1 live then v2 (activated, or in a canary), and scores stored directly."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import numpy as np
from django.utils import timezone

from experiments.models import Score
from experiments.services import canary_start
from promptreg.models import PRODUCTION, Label, MoveVia, PromptVersion
from promptreg.services import Actor, label_move, version_publish
from rollout.charts import quality_figures, version_numbers
from rollout.models import Monitor
from rollout.services import monitor_configure

NAME = "support-system"
CLI = Actor(via=MoveVia.CLI)
_ids = itertools.count()


def publish(n: int = 1, name: str = NAME) -> list[PromptVersion]:
    return [
        version_publish(name=name, kind="text", body=f"Hello {{{{ name }}}} #{i}", commit_message="change", actor=CLI)
        for i in range(n)
    ]


def activate(number: int, name: str = NAME, actor: Actor = CLI) -> None:
    label_move(name=name, label=PRODUCTION, version=number, actor=actor, reason=f"ship v{number}")


def live(name: str = NAME) -> int:
    return Label.objects.get(prompt__name=name, name=PRODUCTION).version.number


def add_scores(
    version: PromptVersion, values, *, end: datetime | None = None, spacing: float = 1.0, metric: str = "quality_score"
) -> None:
    """Store scores ending at `end` (default now), `spacing` seconds apart."""
    end = end or timezone.now()
    values = list(values)
    Score.objects.bulk_create(
        Score(
            client_id=f"score-{next(_ids)}",
            prompt_id=version.prompt_id,
            version=version,
            metric=metric,
            value=float(v),
            timestamp=end - timedelta(seconds=spacing * (len(values) - 1 - i)),
        )
        for i, v in enumerate(values)
    )


def noisy(mean: float, n: int, seed: int, sd: float = 0.1, bounded: bool = True) -> np.ndarray:
    """Normal noise around `mean`, clipped to [0, 1] for bounded metrics."""
    values = np.random.default_rng(seed).normal(mean, sd, n)
    return np.clip(values, 0, 1) if bounded else values


def story(*, v1_mean: float = 0.8, baseline_n: int = 300) -> tuple[PromptVersion, PromptVersion]:
    """v1 live with `baseline_n` good scores over the last hour, then v2 activated now (no scores yet)."""
    v1, v2 = publish(2)
    activate(1)
    add_scores(v1, noisy(v1_mean, baseline_n, seed=1), spacing=3600 / baseline_n)
    activate(2)
    return v1, v2


def monitor(**changes) -> Monitor:
    fields = {"floor_threshold": 0.6, "interval_seconds": 60}
    fields.update(changes)
    return monitor_configure(name=NAME, actor=CLI, changes=fields)


def canary(version: int, *, fraction: float = 0.05, name: str = NAME):
    """Start a canary of `version` on production (the live version is its control)."""
    return canary_start(actor=CLI, prompt=name, version=version, traffic_fraction=fraction)


def canary_story(*, consecutive_failures: int = 2):
    """v1 live with a week of good scores and a monitor; then a canary of v2 started now."""
    v1, v2 = publish(2)
    activate(1)
    add_scores(v1, noisy(0.8, 300, seed=1), spacing=3600 / 300, end=timezone.now() - timedelta(seconds=1))
    label_monitor = monitor(consecutive_failures=consecutive_failures)
    return v1, v2, label_monitor, canary(2)


def chart_markers(prompt) -> list[str]:
    """The labels on the time axis of the prompt's on-call chart."""
    return marker_texts(quality_figures(version_numbers([prompt.id]), {prompt.id: "quality_score"})[prompt.id])


def marker_texts(figure: dict) -> list[str]:
    """Every marker's text, those counted as "+N more" on a crowded axis included (they are listed on hover)."""
    return [text for a in figure["layout"]["annotations"] for text in a["hovertext"].split("<br>")]
