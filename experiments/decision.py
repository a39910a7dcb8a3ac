"""An experiment's decision rules, pure, on summary statistics.

`analyse` turns (control, treatment) statistics per metric into a decision
(ship, keep, no difference, guardrail degraded, insufficient data, invalid SRM)
with the tests of `experiments.stats`; the reads that feed it are `experiments.analysis`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from experiments.stats import (
    DEFAULT_SEQUENTIAL_TUNING,
    SRM_ALPHA,
    NonInferiority,
    SampleStats,
    holm,
    non_inferiority_test,
    proportion_test,
    required_sample_size,
    sequential_test,
    srm_test,
    welch_test,
)

SHIP = "ship_treatment"
KEEP = "keep_control"
NO_DIFFERENCE = "no_significant_difference"
GUARDRAIL = "reject_guardrail_degraded"
INSUFFICIENT = "insufficient_data"
INVALID_SRM = "invalid_srm"


@dataclass(frozen=True)
class Guardrail:
    metric: str
    margin: float
    higher_is_better: bool = True


@dataclass(frozen=True)
class Design:
    """What was fixed before the experiment started."""

    primary_metric: str
    higher_is_better: bool = True
    proportion: bool = False
    guardrails: tuple[Guardrail, ...] = ()
    alpha: float = 0.05
    treatment_fraction: float = 0.5
    min_samples_per_variant: int = 100
    sequential: bool = True
    required_n: tuple[int, int] | None = None  # (control, treatment) from the power calculation
    sequential_tuning: float = DEFAULT_SEQUENTIAL_TUNING


@dataclass
class Analysis:
    decision: str
    explanation: str
    primary: dict[str, Any]
    guardrails: list[dict[str, Any]] = field(default_factory=list)
    srm: dict[str, Any] = field(default_factory=dict)
    required_n_per_variant: int | None = None
    required_n: dict[str, Any] | None = None
    progress: float | None = None
    mode: str = "sequential"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _summary(sample: SampleStats) -> dict[str, Any]:
    return {
        "n": sample.n,
        "mean": sample.mean if sample.n else None,
        "sd": sample.variance**0.5 if sample.n > 1 else None,
    }


def _fmt(x: float) -> str:
    return f"{x:+.4g}"


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%"


def analyse(design: Design, data: dict[str, tuple[SampleStats, SampleStats]], *, runtime_ok: bool = True) -> Analysis:
    """The decision for an experiment from (control, treatment) statistics per metric.

    Order of checks: SRM (p < 0.001 → invalid_srm, never ship); enough data
    (minimum samples, minimum runtime, and in fixed mode the planned sample
    size: a fixed-horizon test is read once); guardrails (Holm-adjusted one-sided
    tests: one shown worse than its margin → reject); then the primary metric.
    Ship needs a significant improvement *and* every guardrail shown non-inferior.
    """
    empty = SampleStats(0, 0.0, 0.0)
    control, treatment = data.get(design.primary_metric, (empty, empty))
    f = design.treatment_fraction
    srm_p = srm_test([control.n, treatment.n], [1 - f, f])
    required = design.required_n
    progress = None
    if required:
        progress = min(1.0, control.n / required[0], treatment.n / required[1]) if all(required) else None
    primary: dict[str, Any] = {
        "metric": design.primary_metric,
        "control": _summary(control),
        "treatment": _summary(treatment),
        "absolute_lift": None,
        "absolute_ci": None,
        "relative_lift": None,
        "relative_ci": None,
        "p_value": None,
    }
    result = Analysis(
        decision=INSUFFICIENT,
        explanation="",
        primary=primary,
        srm={"p_value": srm_p, "ok": srm_p >= SRM_ALPHA, "observed": [control.n, treatment.n], "expected_fraction": f},
        required_n_per_variant=max(required) if required else None,
        required_n={"control": required[0], "treatment": required[1]} if required else None,
        progress=progress,
        mode="sequential" if design.sequential else "fixed",
    )
    if control.n >= 2 and treatment.n >= 2:
        comparison = (proportion_test if design.proportion else welch_test)(control, treatment, design.alpha)
        if design.sequential:
            comparison = sequential_test(comparison, control.n + treatment.n, design.alpha, design.sequential_tuning)
        primary.update(
            absolute_lift=comparison.absolute.effect,
            absolute_ci=list(comparison.absolute.ci),
            p_value=comparison.absolute.p_value,
            relative_lift=comparison.relative.effect if comparison.relative else None,
            relative_ci=list(comparison.relative.ci) if comparison.relative else None,
        )
    else:
        comparison = None
    result.guardrails = _guardrails(design, data)

    if control.n + treatment.n > 0 and srm_p < SRM_ALPHA:
        expected = round((control.n + treatment.n) * f)
        result.decision = INVALID_SRM
        result.explanation = (
            f"The split is off: {treatment.n} sessions got the treatment where about {expected} were expected "
            f"({f:.0%} of {control.n + treatment.n}); a gap this large happens by chance less than once in a thousand "
            f"(p = {srm_p:.2g}). Assignment or score logging is broken, so no result can be trusted; fix it before "
            f"deciding."
        )
        return result
    need = design.min_samples_per_variant
    if comparison is None or min(control.n, treatment.n) < need:
        result.explanation = (
            f"Not enough data yet: {control.n} control and {treatment.n} treatment sessions have a "
            f"'{design.primary_metric}' "
            f"score; each variant needs at least {need} before anything is concluded."
        )
        return result
    if not runtime_ok:
        result.explanation = (
            "The minimum runtime has not passed yet; early results swing with the time of day and week, so wait."
        )
        return result
    if not design.sequential and required and (control.n < required[0] or treatment.n < required[1]):
        result.explanation = (
            f"Fixed-horizon test: it is read once, at the planned {required[0]} control and {required[1]} treatment "
            f"sessions "
            f"({progress:.0%} there). Reading it earlier would inflate false positives; switch to sequential mode to "
            f"look daily."
        )
        return result

    degraded = [g for g in result.guardrails if g["degraded"]]
    if degraded:
        names = ", ".join(f"'{g['metric']}'" for g in degraded)
        result.decision = GUARDRAIL
        result.explanation = (
            f"Guardrail {names} got worse by more than its allowed margin, so the treatment must not "
            f"ship, whatever the primary metric says."
        )
        return result
    better = comparison.absolute.effect > 0 if design.higher_is_better else comparison.absolute.effect < 0
    lift = comparison.relative.effect if comparison.relative else None
    how_much = (
        f"{_fmt(comparison.absolute.effect)} ({_pct(lift)})" if lift is not None else _fmt(comparison.absolute.effect)
    )
    lo, hi = comparison.absolute.ci
    if comparison.significant and better:
        unproven = [g for g in result.guardrails if not g["non_inferior"]]
        if unproven:
            names = ", ".join(f"'{g['metric']}'" for g in unproven)
            result.decision = GUARDRAIL
            result.explanation = (
                f"'{design.primary_metric}' improved by {how_much}, but the data cannot yet rule out that {names} got "
                f"worse "
                "by more than the allowed margin. Do not ship until it does."
            )
            return result
        result.decision = SHIP
        result.explanation = (
            f"The treatment is better: '{design.primary_metric}' changed by {how_much}; the true change is between "
            f"{_fmt(lo)} and {_fmt(hi)} with {1 - design.alpha:.0%} confidence, and every guardrail held. Ship it."
        )
    elif comparison.significant:
        result.decision = KEEP
        result.explanation = (
            f"The treatment is worse: '{design.primary_metric}' changed by {how_much} (between {_fmt(lo)} and "
            f"{_fmt(hi)} "
            f"with {1 - design.alpha:.0%} confidence). Keep the control."
        )
    else:
        result.decision = NO_DIFFERENCE
        more = (
            f" The planned sample size is {progress:.0%} reached; more data can still show a difference."
            if progress is not None and progress < 1
            else ""
        )
        result.explanation = (
            f"No significant difference: '{design.primary_metric}' changed by {how_much}, but anything between "
            f"{_fmt(lo)} and "
            f"{_fmt(hi)} is consistent with the data, including no change.{more}"
        )
    return result


def _guardrails(design: Design, data: dict[str, tuple[SampleStats, SampleStats]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    tests: list[NonInferiority | None] = []
    for g in design.guardrails:
        control, treatment = data.get(g.metric, (SampleStats(0, 0, 0), SampleStats(0, 0, 0)))
        test = None
        if control.n >= 2 and treatment.n >= 2:
            test = non_inferiority_test(
                control, treatment, g.margin, higher_is_better=g.higher_is_better, alpha=design.alpha
            )
        tests.append(test)
        rows.append(
            {
                "metric": g.metric,
                "margin": g.margin,
                "direction": "higher_is_better" if g.higher_is_better else "lower_is_better",
                "control": _summary(control),
                "treatment": _summary(treatment),
                "effect": test.effect if test else None,
                "bound": test.bound if test else None,
                "p_value": None,
                "non_inferior": False,
                "degraded": False,
            }
        )
    present = [(i, t) for i, t in enumerate(tests) if t is not None]
    if present:
        ni = holm([t.p_value for _, t in present])
        harm = holm([t.harm_p_value for _, t in present])
        for k, (i, _) in enumerate(present):
            rows[i].update(p_value=ni[k], non_inferior=ni[k] < design.alpha, degraded=harm[k] < design.alpha)
    return rows


def required_n(
    *, sd: float | None, mde: float | None, alpha: float, power: float, fraction: float
) -> tuple[int, int] | None:
    if not sd or not mde:
        return None
    return required_sample_size(sd, mde, alpha=alpha, power=power, treatment_fraction=fraction)
