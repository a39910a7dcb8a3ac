"""Plotly figures for the on-call page, built from SQL aggregates (never from raw scores)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import plotly.graph_objects as go
from django.db.models import Avg, Count
from django.db.models.functions import TruncMinute
from django.utils import timezone

from experiments.models import Experiment, ExperimentKind, ExperimentState, Score
from promptreg.models import PRODUCTION, LabelMove, MoveVia, Prompt
from rollout.models import RollbackIncident

CHART_HOURS = 24
_PALETTE = ("#2f5bd3", "#b42318", "#1e7b45", "#a86400", "#6941c6", "#0e7490")
RED, GREEN, AMBER = "#b42318", "#1e7b45", "#a86400"


def _marker(fig: go.Figure, at: datetime, text: str, colour: str) -> None:
    """A dashed vertical line at `at`, labelled along it."""
    fig.add_vline(x=at.timestamp() * 1000, line={"color": colour, "dash": "dash", "width": 1})
    fig.add_annotation(
        x=at.isoformat(), y=1, yref="paper", text=text,
        showarrow=False, textangle=-90, xanchor="right", yanchor="top", font={"color": colour, "size": 11},
    )  # fmt: skip


def version_stats(prompt: Prompt, metrics: list[str], since: datetime) -> dict[int, dict[str, dict]]:
    """{version number: {metric: {"n", "mean"}}} over scores since `since`."""
    version_ids = list(prompt.versions.values_list("id", flat=True))
    rows = (
        Score.objects.filter(version_id__in=version_ids, metric__in=metrics, timestamp__gte=since)
        .values("version__number", "metric")
        .annotate(n=Count("id"), mean=Avg("value"))
    )
    stats: dict[int, dict[str, dict]] = {}
    for row in rows:
        stats.setdefault(row["version__number"], {})[row["metric"]] = {"n": row["n"], "mean": row["mean"]}
    return dict(sorted(stats.items(), reverse=True))


def quality_figure(prompt: Prompt, metric: str = "quality_score", *, now: datetime | None = None, hours: int = CHART_HOURS) -> dict:
    """Per-minute mean of `metric` per version, each version's mean as a dotted line, and every
    production move and canary start and end as a marker on the time axis (rollbacks in red)."""
    now = now or timezone.now()
    since = now - timedelta(hours=hours)
    version_ids = list(prompt.versions.values_list("id", flat=True))
    rows = (
        Score.objects.filter(version_id__in=version_ids, metric=metric, timestamp__gte=since)
        .annotate(minute=TruncMinute("timestamp"))
        .values("version__number", "minute")
        .annotate(mean=Avg("value"), n=Count("id"))
        .order_by("minute")
    )
    series: dict[int, list[dict]] = {}
    for row in rows:
        series.setdefault(row["version__number"], []).append(row)
    fig = go.Figure()
    for i, (number, points) in enumerate(sorted(series.items())):
        colour = _PALETTE[i % len(_PALETTE)]
        x = [p["minute"].isoformat() for p in points]
        fig.add_trace(
            go.Scatter(
                x=x, y=[p["mean"] for p in points], mode="lines+markers", name=f"v{number}", line={"color": colour},
                customdata=[p["n"] for p in points], hovertemplate="%{y:.3f} (n=%{customdata})<extra>v" + str(number) + "</extra>",
            )
        )
        total = sum(p["n"] for p in points)
        mean = sum(p["mean"] * p["n"] for p in points) / total
        fig.add_trace(
            go.Scatter(
                x=[x[0], x[-1]], y=[mean, mean], mode="lines", name=f"v{number} mean {mean:.3f}",
                line={"color": colour, "dash": "dot", "width": 2}, hoverinfo="name",
            )
        )
    moves = LabelMove.objects.filter(prompt=prompt, label=PRODUCTION, created_at__gte=since).select_related("to_version")
    for move in moves:
        automatic = move.via == MoveVia.AUTO_ROLLBACK
        word = "auto-rollback" if automatic else ("rollback" if move.is_rollback else "activated")
        _marker(fig, move.created_at, f"{word} v{move.to_version.number}", RED if move.is_rollback else GREEN)
    canaries = Experiment.objects.filter(prompt=prompt, label=PRODUCTION, kind=ExperimentKind.CANARY, started_at__gte=since)
    auto_concluded = set(RollbackIncident.objects.filter(experiment__in=canaries, error="").values_list("experiment_id", flat=True))
    for canary in canaries.select_related("treatment_version"):
        number = canary.treatment_version.number
        _marker(fig, canary.started_at, f"canary v{number} {canary.traffic_fraction:.0%}", AMBER)
        if canary.ended_at and canary.shipped_move_id is None:  # a promotion is the move above
            word = "auto-rollback" if canary.pk in auto_concluded else ("rolled back" if canary.state == ExperimentState.CONCLUDED else "stopped")
            _marker(fig, canary.ended_at, f"canary v{number} {word}", RED)
    fig.update_layout(
        margin={"l": 40, "r": 10, "t": 10, "b": 30}, height=260, xaxis={"type": "date"},
        yaxis={"title": metric}, legend={"orientation": "h"}, template="plotly_white",
    )
    return json.loads(fig.to_json())
