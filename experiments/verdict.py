"""An experiment's analysis in words, for people who are not statisticians.

`headline()` is the dashboard's one-sentence verdict ("Ship v8: quality +4.1% (95% CI +1.2% to +7.0%); latency no
worse than +50 ms"), `guardrail_sentence()` one guardrail row, `metric_name()` / `metric_unit()` / `signed()` how a
metric and its values are written (also on the charts' axes). Pure functions of the analysis dict
(`experiments.analysis.Analysis`).
"""

from __future__ import annotations

from experiments.decision import GUARDRAIL, INSUFFICIENT, INVALID_SRM, KEEP, NO_DIFFERENCE, SHIP

DECISION_LABELS = {
    INVALID_SRM: "Split broken",
    INSUFFICIENT: "Too early",
    NO_DIFFERENCE: "No clear difference",
    GUARDRAIL: "Guardrail not met",
    KEEP: "Keep control",
    SHIP: "Ship treatment",
}
# A metric's unit is its name's suffix, the convention app servers post scores with (`latency_ms`, `cost_usd`).
_UNITS = {"_ms": "ms", "_usd": "USD", "_seconds": "s", "_s": "s", "_tokens": "tokens", "_pct": "%"}


def metric_unit(metric: str) -> str:
    return next((unit for suffix, unit in _UNITS.items() if metric.endswith(suffix)), "")


def metric_name(metric: str) -> str:
    """'quality_score' → 'quality', 'latency_ms' → 'latency', 'user_satisfaction' → 'user satisfaction'."""
    base = metric
    for suffix in (*_UNITS, "_score"):
        if base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("_", " ").replace(".", " ")


def signed(value: float, metric: str) -> str:
    """A change in the metric's own unit, with its sign: '+50 ms', '−0.031', '+$0.001'."""
    unit = metric_unit(metric)
    sign = "+" if value >= 0 else "−"
    number = f"{abs(value):.3g}"
    if unit == "USD":
        return f"{sign}${number}"
    return f"{sign}{number} {unit}".rstrip() if unit and unit != "%" else f"{sign}{number}{unit}"


def _percent(value: float) -> str:
    return f"{'+' if value >= 0 else '−'}{abs(value) * 100:.1f}%"


def p_value(p: float | None) -> str:
    """p-values as people read them: '< 0.0001' below that, never '0.0000' or '1e-09'."""
    if p is None:
        return "—"
    return "< 0.0001" if p < 0.0001 else f"{p:.4f}"


def _lift(primary: dict, alpha: float) -> str:
    """'quality +4.1% (95% CI +1.2% to +7.0%)', or in the metric's unit when there is no relative lift."""
    name, confidence = metric_name(primary["metric"]), f"{1 - alpha:.0%} CI"
    if primary["relative_lift"] is not None and primary["relative_ci"]:
        lo, hi = primary["relative_ci"]
        return f"{name} {_percent(primary['relative_lift'])} ({confidence} {_percent(lo)} to {_percent(hi)})"
    lo, hi = primary["absolute_ci"]
    metric = primary["metric"]
    return (
        f"{name} {signed(primary['absolute_lift'], metric)} ({confidence} {signed(lo, metric)} to {signed(hi, metric)})"
    )


def _allowed(g: dict) -> str:
    """The guardrail's margin as the change it allows: '+50 ms' for a lower-is-better metric, '−0.05' otherwise."""
    return signed(g["margin"] if g["direction"] == "lower_is_better" else -g["margin"], g["metric"])


def guardrail_sentence(g: dict) -> str:
    """One guardrail in words: held, degraded, not shown yet, or no data."""
    name, allowed = metric_name(g["metric"]), _allowed(g)
    if g["effect"] is None:
        return f"No data yet: {name} needs scores from both variants."
    change = signed(g["effect"], g["metric"])
    if g["degraded"]:
        return f"Degraded: {name} changed by {change}, worse than the {allowed} allowed."
    if g["non_inferior"]:
        return (
            f"Held: {name} changed by {change}; at worst {signed(g['bound'], g['metric'])}, within the {allowed} "
            f"allowed."
        )
    return (
        f"Not shown yet: {name} changed by {change}, but it could be as bad as {signed(g['bound'], g['metric'])}, "
        f"beyond the {allowed} allowed. More sessions will tell."
    )


def guardrail_rule(g: dict) -> str:
    """What a guardrail asks, for the plan: 'latency no worse than +50 ms'."""
    return f"{metric_name(g['metric'])} no worse than {_allowed(g)}"


def guardrail_rows(analysis: dict) -> list[dict]:
    """The guardrail table of the dashboard: the rule, both means, the verdict in words, and the statistics."""
    rows = []
    for g in analysis["guardrails"]:
        state = (
            "nodata"
            if g["effect"] is None
            else ("degraded" if g["degraded"] else ("held" if g["non_inferior"] else "pending"))
        )
        rows.append(
            {
                "metric": g["metric"],
                "rule": guardrail_rule(g),
                "state": state,
                "sentence": guardrail_sentence(g),
                "control": g["control"],
                "treatment": g["treatment"],
                "effect": None if g["effect"] is None else signed(g["effect"], g["metric"]),
                "bound": None if g["bound"] is None else signed(g["bound"], g["metric"]),
                "p_value": p_value(g["p_value"]),
            }
        )
    return rows


def headline(analysis: dict, *, treatment: int, control: int, alpha: float, canary: bool = False) -> str:
    """The verdict as one sentence (never a code like `ship_treatment`)."""
    decision, primary = analysis["decision"], analysis["primary"]
    guardrails = analysis["guardrails"]
    if decision == INVALID_SRM:
        observed = analysis["srm"].get("observed") or [0, 0]
        return (
            f"Don't trust these numbers: the traffic split is broken ({observed[1]:,} sessions got v{treatment}, "
            f"{observed[0]:,} got v{control}). Fix assignment or score logging first."
        )
    if decision == INSUFFICIENT:
        counts = f"{primary['control']['n']:,} and {primary['treatment']['n']:,} sessions so far"
        if analysis.get("progress") is not None and primary["absolute_lift"] is not None:
            return f"Too early to call: {counts} ({analysis['progress']:.0%} of the planned sample); keep it running."
        return f"Too early to call: {counts}; keep it running."
    lift = _lift(primary, alpha)
    if decision == SHIP:
        held = ", ".join(guardrail_rule(g) for g in guardrails)
        return f"{'Promote' if canary else 'Ship'} v{treatment}: {lift}" + (f"; {held}" if held else "") + "."
    if decision == KEEP:
        return f"Keep v{control}: v{treatment} did worse, {lift}."
    if decision == GUARDRAIL:
        degraded = [g for g in guardrails if g["degraded"]]
        if degraded:
            worse = ", ".join(
                f"{metric_name(g['metric'])} {signed(g['effect'], g['metric'])} (allowed {_allowed(g)})"
                for g in degraded
            )
            return f"Don't ship v{treatment}: {worse}."
        unproven = " and ".join(
            f"{metric_name(g['metric'])} stays within {_allowed(g)}" for g in guardrails if not g["non_inferior"]
        )
        return f"Don't ship v{treatment} yet: {lift}, but it is not yet shown that {unproven}."
    more = " More sessions can still show one." if (analysis.get("progress") or 1) < 1 else ""
    return f"No clear difference: {lift}.{more}"
