"""Plotly figures for the experiment dashboard, built from data (analysis snapshots,
session means). Each function returns a figure as a plain JSON-able dict; the
template emits it with `json_script` and `static/js/charts.js` draws it."""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import plotly.graph_objects as go
import plotly.io as pio

from experiments import stats

COLORS = {"control": "#5b6475", "treatment": "#2f5bd3"}
BAND = {"control": "rgba(91,100,117,0.18)", "treatment": "rgba(47,91,211,0.18)"}
DECISION_LABELS = {
    stats.INVALID_SRM: "Invalid (split broken)",
    stats.INSUFFICIENT: "Insufficient data",
    stats.NO_DIFFERENCE: "No significant difference",
    stats.GUARDRAIL: "Guardrail degraded",
    stats.KEEP: "Keep control",
    stats.SHIP: "Ship treatment",
}
Z95 = 1.959963984540054


def _layout(title: str, **extra: Any) -> dict:
    return {
        "title": {"text": title, "font": {"size": 14}},
        "margin": {"l": 56, "r": 16, "t": 40, "b": 40},
        "height": 300,
        "legend": {"orientation": "h", "y": -0.2},
        "template": "plotly_white",
        **extra,
    }


def _to_dict(figure: go.Figure) -> dict:
    # plotly's encoder turns numpy and dates into JSON; the dict goes through json_script.
    return json.loads(pio.to_json(figure, validate=True))


def _band(x: list, lo: list, hi: list, color: str, name: str) -> list[go.Scatter]:
    return [
        go.Scatter(x=x, y=hi, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip", name=name),
        go.Scatter(x=x, y=lo, mode="lines", line={"width": 0}, fill="tonexty", fillcolor=color, showlegend=False, hoverinfo="skip", name=name),
    ]


def means_over_time(snapshots: Sequence[dict], metric: str) -> dict:
    """Per-variant mean of the primary metric with its 95% interval (mean ± 1.96·sd/√n), per snapshot."""
    figure = go.Figure()
    for variant in ("control", "treatment"):
        points = [(s["at"], s["result"]["primary"][variant]) for s in snapshots if s["result"]["primary"][variant]["mean"] is not None]
        x = [at for at, _ in points]
        mean = [p["mean"] for _, p in points]
        half = [Z95 * (p["sd"] or 0) / math.sqrt(p["n"]) for _, p in points]
        for trace in _band(x, [m - h for m, h in zip(mean, half)], [m + h for m, h in zip(mean, half)], BAND[variant], variant):
            figure.add_trace(trace)
        figure.add_trace(go.Scatter(x=x, y=mean, mode="lines+markers", name=variant.capitalize(), line={"color": COLORS[variant]}))
    figure.update_layout(_layout(f"Mean {metric} per variant (95% interval)", yaxis={"title": metric}))
    return _to_dict(figure)


def samples_over_time(snapshots: Sequence[dict], required: dict | None) -> dict:
    """Cumulative sessions per variant against the sample size the power calculation asked for."""
    figure = go.Figure()
    x = [s["at"] for s in snapshots]
    for variant in ("control", "treatment"):
        y = [s["result"]["primary"][variant]["n"] for s in snapshots]
        figure.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=f"{variant.capitalize()} sessions", line={"color": COLORS[variant]}))
        if required:
            figure.add_trace(go.Scatter(
                x=[x[0], x[-1]] if x else [], y=[required[variant]] * (2 if x else 0), mode="lines",
                name=f"{variant.capitalize()} required", line={"color": COLORS[variant], "dash": "dash"},
            ))
    figure.update_layout(_layout("Sessions so far vs required", yaxis={"title": "sessions", "rangemode": "tozero"}))
    return _to_dict(figure)


def lift_over_time(snapshots: Sequence[dict], sequential: bool) -> dict:
    """The absolute lift of the primary metric with its interval (always valid in sequential mode) and zero."""
    points = [(s["at"], s["result"]["primary"]) for s in snapshots if s["result"]["primary"]["absolute_ci"]]
    x = [at for at, _ in points]
    figure = go.Figure()
    for trace in _band(x, [p["absolute_ci"][0] for _, p in points], [p["absolute_ci"][1] for _, p in points], BAND["treatment"], "interval"):
        figure.add_trace(trace)
    figure.add_trace(go.Scatter(x=x, y=[p["absolute_lift"] for _, p in points], mode="lines+markers", name="Treatment − control", line={"color": COLORS["treatment"]}))
    figure.add_hline(y=0, line={"color": "#b42318", "dash": "dot"})
    kind = "confidence sequence (always valid)" if sequential else "confidence interval"
    figure.update_layout(_layout(f"Lift with its {kind}", yaxis={"title": "absolute lift"}))
    return _to_dict(figure)


def lift_now(analysis: dict) -> dict:
    """Current relative lift of the primary metric and the absolute effect of each guardrail, with intervals."""
    primary = analysis["primary"]
    names, effects, lows, highs, colors = [], [], [], [], []
    if primary["relative_ci"]:
        names.append(f"{primary['metric']} (relative, %)")
        effects.append(primary["relative_lift"] * 100)
        lows.append((primary["relative_lift"] - primary["relative_ci"][0]) * 100)
        highs.append((primary["relative_ci"][1] - primary["relative_lift"]) * 100)
        colors.append(COLORS["treatment"])
    for g in analysis["guardrails"]:
        if g["effect"] is None:
            continue
        names.append(f"{g['metric']} (absolute; bound {g['bound']:+.3g}, margin {g['margin']:g})")
        effects.append(g["effect"])
        spread = abs(g["effect"] - g["bound"])
        lows.append(spread if g["direction"] == "higher_is_better" else 0)
        highs.append(spread if g["direction"] == "lower_is_better" else 0)
        colors.append("#b42318" if g["degraded"] else ("#1e7b45" if g["non_inferior"] else "#a86400"))
    figure = go.Figure(go.Scatter(
        x=effects, y=names, mode="markers", marker={"size": 11, "color": colors},
        error_x={"type": "data", "symmetric": False, "array": highs, "arrayminus": lows},
    ))
    figure.add_vline(x=0, line={"color": "#5b6475", "dash": "dot"})
    figure.update_layout(_layout("Lift now", height=120 + 50 * len(names), margin={"l": 260, "r": 16, "t": 40, "b": 40}))
    return _to_dict(figure)


def decisions_over_time(snapshots: Sequence[dict]) -> dict:
    """What the analysis would have decided at each snapshot: a step chart."""
    order = list(DECISION_LABELS.values())
    figure = go.Figure(go.Scatter(
        x=[s["at"] for s in snapshots], y=[DECISION_LABELS.get(s["decision"], s["decision"]) for s in snapshots],
        mode="lines+markers", line={"shape": "hv", "color": COLORS["treatment"]}, name="decision",
    ))
    figure.update_layout(_layout("Decision over time", yaxis={"categoryorder": "array", "categoryarray": order, "type": "category"}, margin={"l": 180, "r": 16, "t": 40, "b": 40}))
    return _to_dict(figure)


def distributions(session_means: dict[str, list[float]], metric: str) -> dict:
    """Histogram of per-session means per variant (the unit of analysis)."""
    figure = go.Figure()
    for variant in ("control", "treatment"):
        values = session_means.get(variant) or []
        figure.add_trace(go.Histogram(x=values, name=f"{variant.capitalize()} ({len(values):,})", opacity=0.6, marker={"color": COLORS[variant]}, histnorm="probability"))
    figure.update_layout(_layout(f"Distribution of {metric} per session", barmode="overlay", xaxis={"title": metric}, yaxis={"title": "share of sessions"}))
    return _to_dict(figure)
