"""Plotly figures for the on-call page, built from SQL aggregates (never from raw scores)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, Func, IntegerField
from django.utils import timezone

from experiments.models import Experiment, ExperimentKind, ExperimentState, Score
from promptreg.models import PRODUCTION, LabelMove, MoveVia, PromptVersion
from rollout.models import RollbackIncident

CHART_HOURS = 24
BUCKET_SECONDS = 300  # 288 points a version over the day: as fine as a chart this wide can show
_PALETTE = ("#2f5bd3", "#b42318", "#1e7b45", "#a86400", "#6941c6", "#0e7490")
RED, GREEN, AMBER = "#b42318", "#1e7b45", "#a86400"
GRID = "#e8ecf3"
# The on-call page draws a chart per production prompt, so these figures are written as plotly.js
# JSON directly: building them as plotly.graph_objects costs 20-40 ms a chart in validation (more with
# a template such as plotly_white), seconds on a page of many prompts; tests check their structure.
_LAYOUT = {
    "height": 260,
    "margin": {"l": 40, "r": 10, "t": 10, "b": 30},
    "legend": {"orientation": "h"},
    "paper_bgcolor": "white",
    "plot_bgcolor": "white",
    "font": {"color": "#2a3f5f"},
}


def _marker(at: datetime, text: str, colour: str) -> tuple[dict, dict]:
    """A dashed vertical line at `at` (a shape) and its label along it (an annotation)."""
    line = {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": at.isoformat(),
        "x1": at.isoformat(),
        "y0": 0,
        "y1": 1,
        "line": {"color": colour, "dash": "dash", "width": 1},
    }
    label = {
        "x": at.isoformat(),
        "y": 1,
        "yref": "paper",
        "text": text,
        "showarrow": False,
        "textangle": -90,
        "xanchor": "right",
        "yanchor": "top",
        "font": {"color": colour, "size": 11},
    }
    return line, label


# Marker labels closer in time than this would be drawn over each other on a narrow chart: the newest is written at
# the top of the plot, the next one at the bottom, any older one is counted there ("+1 more") and listed when hovered.
LABEL_GAP = timedelta(hours=1)


def _place_labels(labels: list[dict], gap: timedelta = LABEL_GAP) -> list[dict]:
    """Labels (annotations), newest first, each in a lane: the top, or the bottom when a newer label is within `gap`.
    Each keeps the texts it stands for in `hovertext`."""
    placed: list[dict] = []
    last_top = last_bottom = None
    for label in sorted(labels, key=lambda a: a["x"], reverse=True):
        at = datetime.fromisoformat(label["x"])
        if last_top is None or last_top - at >= gap:
            placed.append({**label, "hovertext": label["text"]})
            last_top = at
        elif last_bottom is None or last_bottom[0] - at >= gap:
            bottom = {**label, "y": 0, "yanchor": "bottom", "hovertext": label["text"]}
            placed.append(bottom)
            last_bottom = (at, bottom, [label["text"]])
        else:
            _, bottom, texts = last_bottom
            texts.append(label["text"])
            bottom["text"] = f"{texts[0]} +{len(texts) - 1} more"
            bottom["hovertext"] = "<br>".join(texts)
    return placed


class EpochBucket(Func):
    """The start of the `seconds`-wide bucket a timestamp falls in, as Unix time: an integer computed
    by the database, so grouping by it converts no datetimes (TruncMinute cost ~25 µs a row)."""

    output_field = IntegerField()

    def __init__(self, expression, seconds: int):
        self.seconds = int(seconds)
        super().__init__(expression)

    def as_postgresql(self, compiler, connection, **extra):
        template = f"(FLOOR(EXTRACT(EPOCH FROM %(expressions)s) / {self.seconds}) * {self.seconds})::bigint"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        template = f"(CAST(strftime('%%%%s', %(expressions)s) AS INTEGER) / {self.seconds}) * {self.seconds}"
        return self.as_sql(compiler, connection, template=template, **extra)


def version_numbers(prompt_ids: list[int]) -> dict[int, tuple[int, int]]:
    """{version id: (prompt id, number)} of the given prompts' versions: what the functions below read scores by."""
    rows = PromptVersion.objects.filter(prompt_id__in=prompt_ids).values_list("id", "prompt_id", "number")
    return {pk: (prompt_id, number) for pk, prompt_id, number in rows}


def version_stats(
    versions: dict[int, tuple[int, int]], prompt_ids: list[int], metrics: list[str], since: datetime
) -> dict[int, dict[int, dict[str, dict]]]:
    """{prompt id: {version number: {metric: {"n", "mean"}}}} over scores since `since`, in one query."""
    rows = (
        Score.objects.filter(version_id__in=versions, metric__in=metrics, timestamp__gte=since)
        .values("version_id", "metric")
        .annotate(n=Count("id"), mean=Avg("value"))
    )
    stats: dict[int, dict[int, dict[str, dict]]] = {pk: {} for pk in prompt_ids}
    for row in rows:
        prompt_id, number = versions[row["version_id"]]
        stats[prompt_id].setdefault(number, {})[row["metric"]] = {"n": row["n"], "mean": row["mean"]}
    return {pk: dict(sorted(by_version.items(), reverse=True)) for pk, by_version in stats.items()}


def quality_figures(
    versions: dict[int, tuple[int, int]],
    metric_of: dict[int, str],
    *,
    now: datetime | None = None,
    hours: int = CHART_HOURS,
) -> dict[int, dict]:
    """{prompt id: figure} for each prompt in `metric_of` (prompt id → metric), of `versions`
    (`version_numbers`, which may hold other prompts' too): the 5-minute means of
    the metric per version, each version's mean as a dotted line, and every production move and canary
    start and end as a marker on the time axis (rollbacks in red). A handful of queries, whatever the
    number of prompts."""
    now = now or timezone.now()
    since = now - timedelta(hours=hours)
    prompt_ids = list(metric_of)
    rows = (
        Score.objects.filter(version_id__in=versions, metric__in=set(metric_of.values()), timestamp__gte=since)
        .annotate(bucket=EpochBucket("timestamp", BUCKET_SECONDS))
        .values("version_id", "metric", "bucket")
        .annotate(mean=Avg("value"), n=Count("id"))
        .order_by("bucket")
    )
    series: dict[int, dict[int, list[Any]]] = {pk: {} for pk in prompt_ids}
    for row in rows:
        prompt_id, number = versions[row["version_id"]]
        if row["metric"] == metric_of.get(prompt_id):
            series[prompt_id].setdefault(number, []).append(row)
    markers: dict[int, list[tuple[dict, dict]]] = {pk: [] for pk in prompt_ids}
    moves = LabelMove.objects.filter(prompt_id__in=prompt_ids, label=PRODUCTION, created_at__gte=since).select_related(
        "to_version"
    )
    for move in moves:
        automatic = move.via == MoveVia.AUTO_ROLLBACK
        word = "auto-rollback" if automatic else ("rollback" if move.is_rollback else "activated")
        markers[move.prompt_id].append(
            _marker(move.created_at, f"{word} v{move.to_version.number}", RED if move.is_rollback else GREEN)
        )
    canaries = Experiment.objects.filter(
        prompt_id__in=prompt_ids, label=PRODUCTION, kind=ExperimentKind.CANARY, started_at__gte=since
    )
    auto_concluded = set(
        RollbackIncident.objects.filter(experiment__in=canaries, error="").values_list("experiment_id", flat=True)
    )
    for canary in canaries.select_related("treatment_version"):
        number, found = canary.treatment_version.number, markers[canary.prompt_id]
        assert canary.started_at is not None, "filtered on started_at"
        found.append(_marker(canary.started_at, f"canary v{number} {canary.traffic_fraction:.0%}", AMBER))
        if canary.ended_at and canary.shipped_move_id is None:  # a promotion is the move above
            word = (
                "auto-rollback"
                if canary.pk in auto_concluded
                else ("rolled back" if canary.state == ExperimentState.CONCLUDED else "stopped")
            )
            found.append(_marker(canary.ended_at, f"canary v{number} {word}", RED))
    return {pk: _figure(series[pk], markers[pk], metric_of[pk]) for pk in prompt_ids}


def _figure(series: dict[int, list[dict]], markers: list[tuple[dict, dict]], metric: str) -> dict:
    traces = []
    for i, (number, points) in enumerate(sorted(series.items())):
        colour = _PALETTE[i % len(_PALETTE)]
        x = [datetime.fromtimestamp(p["bucket"], UTC).isoformat() for p in points]
        traces.append(
            {
                "type": "scatter",
                "x": x,
                "y": [p["mean"] for p in points],
                "mode": "lines+markers",
                "name": f"v{number}",
                "line": {"color": colour},
                "customdata": [p["n"] for p in points],
                "hovertemplate": "%{y:.3f} (n=%{customdata})<extra>v" + str(number) + "</extra>",
            }
        )
        total = sum(p["n"] for p in points)
        mean = sum(p["mean"] * p["n"] for p in points) / total
        traces.append(
            {
                "type": "scatter",
                "x": [x[0], x[-1]],
                "y": [mean, mean],
                "mode": "lines",
                "name": f"v{number} mean {mean:.3f}",
                "line": {"color": colour, "dash": "dot", "width": 2},
                "hoverinfo": "name",
            }
        )
    layout = {
        **_LAYOUT,
        "xaxis": {"type": "date", "gridcolor": GRID},
        "yaxis": {"title": {"text": metric}, "gridcolor": GRID},
        "shapes": [line for line, _ in markers],
        "annotations": _place_labels([label for _, label in markers]),
    }
    return {"data": traces, "layout": layout}
