"""Plotly figures for the experiment dashboard, built from data (analysis snapshots, session means).

Each function returns a figure as plotly.js JSON (a plain dict): the template emits it with `json_script` and
`static/js/charts.js` draws it. Written as dicts rather than `plotly.graph_objects`, whose validation and templates
cost 20–60 ms a figure (most of the page's time); tests check their structure. Every axis has one unit, and every
chart reads with a single snapshot (markers with error bars, not bands that need two points)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from experiments.verdict import DECISION_LABELS, metric_name, metric_unit

COLORS = {"control": "#5b6475", "treatment": "#2f5bd3"}
RED, GREEN, AMBER, GRID = "#b42318", "#1e7b45", "#a86400", "#e8ecf3"
Z95 = 1.959963984540054
SINGLE_POINT_PADDING = timedelta(hours=1)


def _layout(title: str, **extra: Any) -> dict:
    return {
        "title": {"text": title, "font": {"size": 14}},
        "margin": {"l": 64, "r": 16, "t": 40, "b": 48},
        "height": 300,
        "legend": {"orientation": "h", "y": -0.25},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "font": {"color": "#2a3f5f"},
        **extra,
    }


def _axis_title(metric: str, what: str = "") -> str:
    """'latency (ms)', 'change in quality': the metric's name and its unit, once."""
    unit = metric_unit(metric)
    text = f"{what}{metric_name(metric)}"
    return f"{text} ({unit})" if unit else text


def _time_axis(x: list[str]) -> dict:
    """A date axis; around a single snapshot it spans two hours instead of a few milliseconds."""
    axis: dict = {"type": "date", "gridcolor": GRID}
    if x and len(set(x)) == 1:
        at = datetime.fromisoformat(x[0])
        axis["range"] = [(at - SINGLE_POINT_PADDING).isoformat(), (at + SINGLE_POINT_PADDING).isoformat()]
    return axis


def _hline(y: float, colour: str, text: str = "") -> tuple[dict, dict | None]:
    shape = {
        "type": "line",
        "xref": "paper",
        "x0": 0,
        "x1": 1,
        "yref": "y",
        "y0": y,
        "y1": y,
        "line": {"color": colour, "dash": "dash", "width": 1},
    }
    label = (
        {
            "xref": "paper",
            "x": 1,
            "y": y,
            "yref": "y",
            "text": text,
            "showarrow": False,
            "xanchor": "right",
            "yanchor": "bottom",
            "font": {"color": colour, "size": 11},
        }
        if text
        else None
    )
    return shape, label


def means_over_time(snapshots: Sequence[dict], metric: str) -> dict:
    """Per-variant mean of the primary metric with its 95% interval (mean ± 1.96·sd/√n) as error bars, per snapshot."""
    traces, all_x = [], []
    for variant in ("control", "treatment"):
        points = [
            (s["at"], s["result"]["primary"][variant])
            for s in snapshots
            if s["result"]["primary"][variant]["mean"] is not None
        ]
        x = [at for at, _ in points]
        all_x += x
        half = [Z95 * (p["sd"] or 0) / p["n"] ** 0.5 for _, p in points]
        traces.append(
            {
                "type": "scatter",
                "x": x,
                "y": [p["mean"] for _, p in points],
                "mode": "lines+markers",
                "name": variant.capitalize(),
                "line": {"color": COLORS[variant]},
                "error_y": {"type": "data", "array": half, "visible": True, "color": COLORS[variant], "thickness": 1},
            }
        )
    layout = _layout(
        f"Mean {metric_name(metric)} per variant (95% interval)",
        xaxis=_time_axis(all_x),
        yaxis={"title": {"text": _axis_title(metric)}, "gridcolor": GRID},
    )
    return {"data": traces, "layout": layout}


def samples_over_time(snapshots: Sequence[dict], required: dict | None) -> dict:
    """Sessions per variant so far, against the sample size the power calculation asked for (dashed lines)."""
    x = [s["at"] for s in snapshots]
    traces = [
        {
            "type": "scatter",
            "x": x,
            "y": [s["result"]["primary"][variant]["n"] for s in snapshots],
            "mode": "lines+markers",
            "name": f"{variant.capitalize()} sessions",
            "line": {"color": COLORS[variant]},
        }
        for variant in ("control", "treatment")
    ]
    shapes, annotations = [], []
    if required and required["control"] == required["treatment"]:
        shape, label = _hline(required["control"], COLORS["treatment"], f"each variant needs {required['control']:,}")
        shapes, annotations = [shape], [label]
    elif required:
        for variant in ("control", "treatment"):
            shape, label = _hline(required[variant], COLORS[variant], f"{variant} needs {required[variant]:,}")
            shapes.append(shape)
            annotations.append(label)
    layout = _layout(
        "Sessions so far vs planned",
        xaxis=_time_axis(x),
        shapes=shapes,
        annotations=annotations,
        yaxis={"title": {"text": "sessions"}, "rangemode": "tozero", "gridcolor": GRID},
    )
    return {"data": traces, "layout": layout}


def lift_over_time(snapshots: Sequence[dict], sequential: bool, metric: str) -> dict:
    """Treatment − control on the primary metric, with its interval (always valid in sequential mode) as error bars."""
    points = [(s["at"], s["result"]["primary"]) for s in snapshots if s["result"]["primary"]["absolute_ci"]]
    x = [at for at, _ in points]
    trace = {
        "type": "scatter",
        "x": x,
        "y": [p["absolute_lift"] for _, p in points],
        "mode": "lines+markers",
        "name": "Treatment − control",
        "line": {"color": COLORS["treatment"]},
        "error_y": {
            "type": "data",
            "symmetric": False,
            "visible": True,
            "color": COLORS["treatment"],
            "thickness": 1,
            "array": [p["absolute_ci"][1] - p["absolute_lift"] for _, p in points],
            "arrayminus": [p["absolute_lift"] - p["absolute_ci"][0] for _, p in points],
        },
    }
    zero, label = _hline(0, RED, "no change")
    kind = "always-valid interval" if sequential else "95% interval"
    layout = _layout(
        f"Change in {metric_name(metric)} over time ({kind})",
        xaxis=_time_axis(x),
        yaxis={"title": {"text": _axis_title(metric, "change in ")}, "gridcolor": GRID, "zeroline": False},
        shapes=[zero],
        annotations=[label],
    )
    return {"data": [trace], "layout": layout}


def _interval_row(
    name: str, effect: float, lo: float, hi: float, colour: str, xaxis: str = "x", yaxis: str = "y"
) -> dict:
    return {
        "type": "scatter",
        "x": [effect],
        "y": [name],
        "mode": "markers",
        "marker": {"size": 12, "color": colour},
        "showlegend": False,
        "xaxis": xaxis,
        "yaxis": yaxis,
        "hovertemplate": "%{x:.4g}<extra></extra>",
        "error_x": {
            "type": "data",
            "symmetric": False,
            "array": [hi - effect],
            "arrayminus": [effect - lo],
            "color": colour,
            "thickness": 2,
            "width": 8,
        },
    }


def lift_now(analysis: dict) -> dict:
    """The primary metric's change now with its interval: relative (%) when there is a relative lift, else absolute."""
    primary = analysis["primary"]
    metric = primary["metric"]
    if primary["relative_ci"]:
        lo, hi = primary["relative_ci"]
        trace = _interval_row(
            metric_name(metric), primary["relative_lift"] * 100, lo * 100, hi * 100, COLORS["treatment"]
        )
        title = f"change in {metric_name(metric)} (%)"
    elif primary["absolute_ci"]:
        lo, hi = primary["absolute_ci"]
        trace = _interval_row(metric_name(metric), primary["absolute_lift"], lo, hi, COLORS["treatment"])
        title = _axis_title(metric, "change in ")
    else:
        trace, title = None, _axis_title(metric, "change in ")
    xaxis = {"title": {"text": title}, "zeroline": True, "zerolinecolor": RED, "zerolinewidth": 2, "gridcolor": GRID}
    if trace:  # zero ("no change") always in view: how far the interval is from it is the point of the chart
        lo, hi = trace["x"][0] - trace["error_x"]["arrayminus"][0], trace["x"][0] + trace["error_x"]["array"][0]
        pad = 0.08 * (max(hi, 0) - min(lo, 0) or 1)
        xaxis["range"] = [min(lo, 0) - pad, max(hi, 0) + pad]
    layout = _layout(
        f"{metric_name(metric).capitalize()} now: treatment vs control (red: no change)",
        height=180,
        xaxis=xaxis,
        yaxis={"showticklabels": False},
        margin={"l": 24, "r": 16, "t": 40, "b": 48},
    )
    return {"data": [trace] if trace else [], "layout": layout}


def guardrails_now(analysis: dict) -> dict | None:
    """Each guardrail on its own axis, in its own unit: the change, its one-sided bound, and the margin allowed
    (red)."""
    rows = [g for g in analysis["guardrails"] if g["effect"] is not None]
    if not rows:
        return None
    gap = 0.12
    height = (1 - gap * (len(rows) - 1)) / len(rows)
    traces, shapes, layout = (
        [],
        [],
        _layout("Guardrails now: change vs the margin allowed (red)", height=90 + 110 * len(rows)),
    )
    for i, g in enumerate(rows):
        suffix = "" if i == 0 else str(i + 1)
        x_name, y_name = f"x{suffix}", f"y{suffix}"
        worse_is_up = g["direction"] == "lower_is_better"
        allowed = g["margin"] if worse_is_up else -g["margin"]
        lo, hi = (g["effect"], g["bound"]) if worse_is_up else (g["bound"], g["effect"])
        colour = RED if g["degraded"] else (GREEN if g["non_inferior"] else AMBER)
        traces.append(_interval_row(metric_name(g["metric"]), g["effect"], lo, hi, colour, x_name, y_name))
        top = 1 - i * (height + gap)
        layout[f"yaxis{suffix}"] = {"domain": [top - height, top], "anchor": x_name, "showticklabels": False}
        layout[f"xaxis{suffix}"] = {
            "anchor": y_name,
            "title": {"text": _axis_title(g["metric"], "change in ")},
            "gridcolor": GRID,
            "zeroline": True,
            "zerolinecolor": "#5b6475",
        }
        shapes.append(
            {
                "type": "line",
                "xref": x_name,
                "yref": f"{y_name} domain",
                "x0": allowed,
                "x1": allowed,
                "y0": 0,
                "y1": 1,
                "line": {"color": RED, "dash": "dash", "width": 2},
            }
        )
        span = max(abs(allowed), abs(lo), abs(hi)) * 1.15
        layout[f"xaxis{suffix}"]["range"] = [min(0, lo, allowed) - 0.05 * span, max(0, hi, allowed) + 0.05 * span]
    layout["shapes"] = shapes
    layout["margin"] = {"l": 24, "r": 16, "t": 40, "b": 48}
    return {"data": traces, "layout": layout}


def decisions_over_time(snapshots: Sequence[dict]) -> dict:
    """What the analysis would have decided at each snapshot, in words: a step chart."""
    x = [s["at"] for s in snapshots]
    seen = {s["decision"] for s in snapshots}
    trace = {
        "type": "scatter",
        "x": x,
        "y": [DECISION_LABELS.get(s["decision"], s["decision"]) for s in snapshots],
        "mode": "lines+markers",
        "line": {"shape": "hv", "color": COLORS["treatment"]},
        "name": "decision",
    }
    layout = _layout(
        "Verdict over time",
        xaxis=_time_axis(x),
        margin={"l": 150, "r": 16, "t": 40, "b": 48},
        yaxis={
            "type": "category",
            "categoryorder": "array",
            "gridcolor": GRID,
            "categoryarray": [label for decision, label in DECISION_LABELS.items() if decision in seen],
        },
    )
    return {"data": [trace], "layout": layout}


def distributions(session_means: dict[str, list[float]], metric: str) -> dict:
    """Histogram of per-session means per variant (the unit of analysis), as shares of each variant's sessions."""
    traces = [
        {
            "type": "histogram",
            "x": session_means.get(variant) or [],
            "name": f"{variant.capitalize()} ({len(session_means.get(variant) or []):,} sessions)",
            "opacity": 0.6,
            "marker": {"color": COLORS[variant]},
            "histnorm": "probability",
        }
        for variant in ("control", "treatment")
    ]
    layout = _layout(
        f"{metric_name(metric).capitalize()} per session",
        barmode="overlay",
        xaxis={"title": {"text": _axis_title(metric)}, "gridcolor": GRID},
        yaxis={"title": {"text": "share of sessions"}, "tickformat": ".0%", "gridcolor": GRID},
    )
    return {"data": traces, "layout": layout}
