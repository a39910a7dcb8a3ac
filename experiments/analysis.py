"""An experiment's analysis: the decision rules (pure, on summary statistics) and the reads that feed them.

`analyse` turns (control, treatment) statistics per metric into a decision
(ship, keep, no difference, guardrail degraded, insufficient data, invalid SRM)
with the tests of `experiments.stats`; the `experiment_*` functions read those
statistics from SQL, plan sample sizes, store snapshots and feed the dashboard.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.db.models import Count, F, Sum
from django.utils import timezone

from experiments.models import (
    CONTROL,
    TREATMENT,
    AnalysisSnapshot,
    Direction,
    Experiment,
    ExperimentMode,
    ExperimentSession,
    ExperimentState,
    ExperimentTotal,
    MetricKind,
    Score,
)
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
from promptreg.models import PromptVersion


def experiment_required_n(experiment: Experiment) -> tuple[int, int] | None:
    return required_n(
        sd=experiment.baseline_sd,
        mde=experiment.minimum_detectable_effect,
        alpha=experiment.alpha,
        power=experiment.power,
        fraction=experiment.traffic_fraction,
    )


def experiment_design(experiment: Experiment) -> Design:
    required = experiment_required_n(experiment)
    return Design(
        primary_metric=experiment.primary_metric,
        higher_is_better=experiment.primary_direction == Direction.HIGHER,
        proportion=experiment.primary_kind == MetricKind.PROPORTION,
        guardrails=tuple(
            Guardrail(g["metric"], g["margin"], g["direction"] == Direction.HIGHER) for g in experiment.guardrails
        ),
        alpha=experiment.alpha,
        treatment_fraction=experiment.traffic_fraction,
        min_samples_per_variant=experiment.min_samples_per_variant,
        sequential=experiment.mode == ExperimentMode.SEQUENTIAL,
        required_n=required,
        # The sequence is tightest where the plan expects to stop.
        sequential_tuning=float(sum(required)) if required else DEFAULT_SEQUENTIAL_TUNING,
    )


def experiment_data(experiment: Experiment) -> dict[str, tuple[SampleStats, SampleStats]]:
    """(control, treatment) sufficient statistics of session means per metric: a handful of rows,
    whatever the number of scores."""
    rows = ExperimentTotal.objects.filter(experiment=experiment, metric__in=experiment.metrics)
    found = {(r.metric, r.variant): SampleStats(r.sessions, r.sum, r.sum_sq) for r in rows}
    empty = SampleStats(0, 0.0, 0.0)
    return {m: (found.get((m, CONTROL), empty), found.get((m, TREATMENT), empty)) for m in experiment.metrics}


def experiment_analyse(experiment: Experiment) -> Analysis:
    return analyse(
        experiment_design(experiment),
        experiment_data(experiment),
        runtime_ok=experiment.runtime >= experiment.min_runtime,
    )


def experiment_snapshot(experiment_id: int) -> AnalysisSnapshot | None:
    """Compute and store the current analysis (the dashboard's time series); skipped while no
    new data arrived since the last snapshot of a running experiment."""
    experiment = (
        Experiment.objects.select_related("prompt", "control_version", "treatment_version")
        .filter(pk=experiment_id)
        .first()
    )
    if experiment is None or experiment.state == ExperimentState.DRAFT:
        return None
    result = experiment_analyse(experiment).to_dict()
    result["scores"] = dict(
        ExperimentTotal.objects.filter(experiment=experiment, metric=experiment.primary_metric).values_list(
            "variant", "scores"
        )
    )
    last: AnalysisSnapshot | None = experiment.snapshots.order_by("-computed_at", "-id").first()
    if last is not None and last.result == result:
        return last
    return AnalysisSnapshot.objects.create(experiment=experiment, decision=result["decision"], result=result)


def experiments_snapshot_running() -> int:
    """One pass over every running experiment (what beat runs)."""
    count = 0
    for experiment_id in Experiment.objects.running().values_list("pk", flat=True):
        count += experiment_snapshot(experiment_id) is not None
    return count


CHART_POINTS = 200


DISTRIBUTION_SESSIONS = 5000


def experiment_history(experiment: Experiment, points: int = CHART_POINTS) -> list[dict[str, Any]]:
    """Stored snapshots, thinned evenly to at most `points` (the newest always included)."""
    ids = list(experiment.snapshots.order_by("computed_at", "id").values_list("id", flat=True))
    if len(ids) > points:
        step = len(ids) / points
        ids = sorted({ids[int(i * step)] for i in range(points)} | {ids[-1]})
    rows = AnalysisSnapshot.objects.filter(id__in=ids).order_by("computed_at", "id")
    return [{"at": s.computed_at.isoformat(), "decision": s.decision, "result": s.result} for s in rows]


def experiment_session_means(
    experiment: Experiment, metric: str, limit: int = DISTRIBUTION_SESSIONS
) -> dict[str, list[float]]:
    """Per-session means of a metric for each variant (at most `limit` sessions each, for a histogram)."""
    means: dict[str, list[float]] = {}
    for variant in (CONTROL, TREATMENT):
        rows = ExperimentSession.objects.filter(experiment=experiment, metric=metric, variant=variant).values_list(
            "n", "total"
        )[:limit]
        means[variant] = [total / n for n, total in rows if n]
    return means


SHIP = "ship_treatment"


KEEP = "keep_control"


NO_DIFFERENCE = "no_significant_difference"


GUARDRAIL = "reject_guardrail_degraded"


INSUFFICIENT = "insufficient_data"


INVALID_SRM = "invalid_srm"


DECISIONS = (SHIP, KEEP, NO_DIFFERENCE, GUARDRAIL, INSUFFICIENT, INVALID_SRM)


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


def baseline_estimate(version: PromptVersion, metric: str) -> tuple[int, float | None, float | None]:
    """(n, mean, sd) of a metric's recent scores for a version, from SQL aggregates; the
    standard deviation the power calculation uses when none is given."""
    since = timezone.now() - BASELINE_WINDOW
    agg = Score.objects.filter(version=version, metric=metric, timestamp__gte=since).aggregate(
        n=Count("id"), s=Sum("value"), ss=Sum(F("value") * F("value"))
    )
    summary = SampleStats(agg["n"], agg["s"] or 0.0, agg["ss"] or 0.0)
    if summary.n < 2:
        return summary.n, None, None
    return summary.n, summary.mean, summary.variance**0.5


def required_n(
    *, sd: float | None, mde: float | None, alpha: float, power: float, fraction: float
) -> tuple[int, int] | None:
    if not sd or not mde:
        return None
    return required_sample_size(sd, mde, alpha=alpha, power=power, treatment_fraction=fraction)


BASELINE_WINDOW = timedelta(days=14)
