"""Statistics, pure functions on sufficient statistics: online experiments, monitors (`Aggregate`,
`welch_worse_than`) and evaluation runs (`mean_ci`, `paired_test`). The decisions built on them are in
`experiments.analysis`; nothing here touches the database.

Every test takes `SampleStats` (n, Σx, Σx²) per variant, which SQL can keep or
aggregate, so nothing here ever sees raw scores. The unit is the session: the
caller passes statistics of per-session means.

References
- Welch's t-test with the Welch–Satterthwaite degrees of freedom; the relative
  lift's standard error by the delta method, as in GrowthBook's gbstats
  (`TwoSidedTTest`), which `../shared/reference/gbstats_oracle.txt` reproduces.
- Always-valid inference: asymptotic confidence sequences of Waudby-Smith et al.
  (2023, arXiv:2103.06476, eq. 155/161), as in gbstats' `SequentialTwoSidedTTest`.
- Holm (1979) step-down and Benjamini–Hochberg (1995) step-up adjustments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import special, stats

DEFAULT_SEQUENTIAL_TUNING = 5000  # gbstats' default N*: the sample size the sequence is tightest at
SRM_ALPHA = 0.001


@dataclass(frozen=True)
class SampleStats:
    """Sufficient statistics of one variant: count, Σx and Σx² (x = one session's mean)."""

    n: int
    sum: float
    sum_sq: float

    @classmethod
    def of(cls, values: Iterable[float]) -> SampleStats:
        values = list(values)
        return cls(len(values), math.fsum(values), math.fsum(v * v for v in values))

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Unbiased sample variance (Σx² − (Σx)²/n) / (n − 1); 0 below two observations."""
        if self.n < 2:
            return 0.0
        return max(self.sum_sq - self.sum * self.sum / self.n, 0.0) / (self.n - 1)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval, p-value and standard error."""

    effect: float
    ci: tuple[float, float]
    p_value: float
    se: float

    def to_dict(self) -> dict[str, Any]:
        return {"effect": self.effect, "ci": list(self.ci), "p_value": self.p_value, "se": self.se}


@dataclass(frozen=True)
class Comparison:
    """Treatment against control on one metric: absolute and relative lift."""

    absolute: Estimate
    relative: Estimate | None  # None when the control mean is 0 (no relative lift)
    df: float

    @property
    def significant(self) -> bool:
        return self.absolute.ci[0] > 0 or self.absolute.ci[1] < 0


def welch_df(control: SampleStats, treatment: SampleStats) -> float:
    """Welch–Satterthwaite degrees of freedom: (a + b)² / (a²/(n_c−1) + b²/(n_t−1)), a = s²_c/n_c, b = s²_t/n_t."""
    a = control.variance / control.n
    b = treatment.variance / treatment.n
    denominator = a * a / (control.n - 1) + b * b / (treatment.n - 1)
    return (a + b) ** 2 / denominator if denominator > 0 else float(control.n + treatment.n - 2)


def _two_sided(effect: float, se: float, alpha: float, df: float | None) -> Estimate:
    """Interval effect ± q·se and p = 2·P(T > |effect/se|), with T Student's t (df) or normal (df=None)."""
    if se <= 0:
        return Estimate(effect, (effect, effect), 1.0 if effect == 0 else 0.0, 0.0)
    q = _quantile(1 - alpha / 2, df)
    p = 2 * _sf(abs(effect) / se, df)
    return Estimate(effect, (effect - q * se, effect + q * se), p, se)


def _sf(x: float, df: float | None) -> float:
    """P(T > x) for Student's t with df degrees of freedom, or the standard normal when df is None."""
    return float(special.ndtr(-x) if df is None else special.stdtr(df, -x))


def _quantile(p: float, df: float | None) -> float:
    return float(special.ndtri(p) if df is None else special.stdtrit(df, p))


def relative_se(control: SampleStats, treatment: SampleStats, var_c: float, var_t: float) -> float:
    """Delta method for lift = m_t/m_c − 1: Var ≈ s²_t/(n_t·m_c²) + m_t²·s²_c/(n_c·m_c⁴)."""
    mc, mt = control.mean, treatment.mean
    return math.sqrt(var_t / (treatment.n * mc**2) + mt**2 * var_c / (control.n * mc**4))


def welch_test(control: SampleStats, treatment: SampleStats, alpha: float = 0.05) -> Comparison:
    """Welch's (unpooled) t-test of mean(treatment) − mean(control), with the CI of
    the absolute and (delta method) relative lift at level 1 − alpha.

    Both use Student's t with the Welch–Satterthwaite df, as gbstats does.
    """
    _require_two_each(control, treatment)
    df = welch_df(control, treatment)
    se = math.sqrt(control.variance / control.n + treatment.variance / treatment.n)
    absolute = _two_sided(treatment.mean - control.mean, se, alpha, df)
    relative = None
    if control.mean != 0:
        rse = relative_se(control, treatment, control.variance, treatment.variance)
        relative = _two_sided(treatment.mean / control.mean - 1, rse, alpha, df)
    return Comparison(absolute, relative, df)


def proportion_test(control: SampleStats, treatment: SampleStats, alpha: float = 0.05) -> Comparison:
    """Unpooled two-proportion z-test for 0/1 outcomes: se = √(p_c(1−p_c)/n_c + p_t(1−p_t)/n_t),
    normal quantiles; the relative lift by the delta method with var = p(1−p)."""
    _require_two_each(control, treatment)
    pc, pt = control.mean, treatment.mean
    var_c, var_t = pc * (1 - pc), pt * (1 - pt)
    se = math.sqrt(var_c / control.n + var_t / treatment.n)
    absolute = _two_sided(pt - pc, se, alpha, None)
    relative = None
    if pc != 0:
        relative = _two_sided(pt / pc - 1, relative_se(control, treatment, var_c, var_t), alpha, None)
    return Comparison(absolute, relative, math.inf)


def _require_two_each(control: SampleStats, treatment: SampleStats) -> None:
    if control.n < 2 or treatment.n < 2:
        raise ValueError("each variant needs at least two observations")


def sequential_rho(alpha: float, tuning: float = DEFAULT_SEQUENTIAL_TUNING) -> float:
    """ρ of the normal-mixture boundary, tuned to be tightest near N* = tuning (eq. 161):
    ρ = √((−2 ln α + ln(−2 ln α + 1)) / N*)."""
    return math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)


def confidence_sequence(
    estimate: Estimate, n_total: int, alpha: float = 0.05, tuning: float = DEFAULT_SEQUENTIAL_TUNING
) -> Estimate:
    """Turn a fixed-horizon estimate into an always-valid one (asymptotic confidence sequence).

    With N = n_c + n_t, s² = se²·N and ρ from `sequential_rho`, the half-width is
    √s² · √(2(Nρ² + 1) / (N²ρ²) · ln(√(Nρ² + 1) / α)). The always-valid p-value is the α
    at which that interval (ρ held fixed) just touches 0:
    p = min(1, √(Nρ² + 1) · exp(−effect²·N²ρ² / (2 s² (Nρ² + 1)))).
    The probability that the sequence ever excludes the true effect, over all looks, is ≤ α.
    """
    if estimate.se <= 0 or n_total <= 0:
        return estimate
    rho = sequential_rho(alpha, tuning)
    n = float(n_total)
    s2 = estimate.se**2 * n
    nr2 = n * rho * rho
    half = math.sqrt(s2 * 2 * (nr2 + 1) / (n * n * rho * rho) * math.log(math.sqrt(nr2 + 1) / alpha))
    exponent = -(estimate.effect**2) * n * n * rho * rho / (2 * s2 * (nr2 + 1))
    p = min(1.0, math.sqrt(nr2 + 1) * math.exp(exponent))
    return Estimate(estimate.effect, (estimate.effect - half, estimate.effect + half), p, estimate.se)


def sequential_test(
    comparison: Comparison, n_total: int, alpha: float = 0.05, tuning: float = DEFAULT_SEQUENTIAL_TUNING
) -> Comparison:
    """`welch_test` / `proportion_test` made always valid: both lifts get confidence sequences."""
    relative = comparison.relative and confidence_sequence(comparison.relative, n_total, alpha, tuning)
    return Comparison(confidence_sequence(comparison.absolute, n_total, alpha, tuning), relative, comparison.df)


@dataclass(frozen=True)
class NonInferiority:
    """One-sided test that the treatment is not worse than control by more than `margin`."""

    effect: float
    bound: float  # one-sided (1 − alpha) bound on the effect: lower if higher is better, upper otherwise
    p_value: float
    harm_p_value: float  # one-sided p of "worse by more than the margin"


def non_inferiority_test(
    control: SampleStats, treatment: SampleStats, margin: float, *, higher_is_better: bool = True, alpha: float = 0.05
) -> NonInferiority:
    """Welch one-sided non-inferiority test with an absolute margin m ≥ 0.

    Higher is better: H0: δ ≤ −m vs H1: δ > −m, t = (δ + m)/se, p = P(T > t).
    Lower is better:  H0: δ ≥ m  vs H1: δ < m,  t = (m − δ)/se, p = P(T > t).
    `harm_p_value` is the mirror test (H1: worse by more than m), used to call a guardrail degraded.
    """
    _require_two_each(control, treatment)
    if margin < 0:
        raise ValueError("the margin is a non-negative amount in the metric's units")
    df = welch_df(control, treatment)
    se = math.sqrt(control.variance / control.n + treatment.variance / treatment.n)
    effect = treatment.mean - control.mean
    good = effect if higher_is_better else -effect  # the effect in the "better" direction
    q = _quantile(1 - alpha, df)
    if se <= 0:
        p = 0.0 if good > -margin else 1.0
        return NonInferiority(effect, effect, p, 1.0 - p if good != -margin else 1.0)
    t = (good + margin) / se
    bound = effect - q * se if higher_is_better else effect + q * se
    return NonInferiority(effect, bound, _sf(t, df), _sf(-t, df))


def srm_test(observed: Sequence[int], expected_fractions: Sequence[float]) -> float:
    """Sample-ratio mismatch: Pearson's χ² goodness of fit of the observed counts
    against the configured split (k − 1 df). A small p means assignment or logging is broken."""
    total = sum(observed)
    if total == 0:
        return 1.0
    chi2 = sum((o - total * f) ** 2 / (total * f) for o, f in zip(observed, expected_fractions, strict=True))
    return float(special.chdtrc(len(observed) - 1, chi2))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni step-down adjusted p-values (family-wise error ≤ α); same order as given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg step-up adjusted p-values (false-discovery rate ≤ α); same order as given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for k, i in enumerate(order):
        rank = m - k
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(1.0, running)
    return adjusted


def required_sample_size(
    sd: float, mde: float, *, alpha: float = 0.05, power: float = 0.8, treatment_fraction: float = 0.5
) -> tuple[int, int]:
    """Sessions needed per variant (control, treatment) for a two-sided test at `alpha` to detect an
    absolute difference `mde` with probability `power`, given the per-session standard deviation:
    N = (z₁₋α/₂ + z_power)² σ² (1/(1−f) + 1/f) / mde², split N(1−f) : N f."""
    if sd <= 0 or mde == 0:
        raise ValueError("need a positive standard deviation and a non-zero effect")
    z = _quantile(1 - alpha / 2, None) + _quantile(power, None)
    f = treatment_fraction
    total = z * z * sd * sd * (1 / (1 - f) + 1 / f) / (mde * mde)
    return math.ceil(total * (1 - f)), math.ceil(total * f)


def power_at(n_control: int, n_treatment: int, sd: float, mde: float, *, alpha: float = 0.05) -> float:
    """Power of the two-sided test: Φ(|mde|/se − z₁₋α/₂) + Φ(−|mde|/se − z₁₋α/₂), se = σ√(1/n_c + 1/n_t)."""
    se = sd * math.sqrt(1 / n_control + 1 / n_treatment)
    z = _quantile(1 - alpha / 2, None)
    shift = abs(mde) / se
    return _sf(z - shift, None) + _sf(z + shift, None)


# --- decisions ---------------------------------------------------------------


# ---------------------------------------------------------------- monitors: aggregates from SQL


@dataclass(frozen=True)
class Aggregate:
    """Sufficient statistics of a sample: size, mean and unbiased variance."""

    n: int
    mean: float = 0.0
    variance: float = 0.0

    @classmethod
    def from_sums(cls, n: int, total: float, total_sq: float) -> Aggregate:
        """From (n, Σx, Σx²): mean = Σx/n, s² = (Σx² − n·mean²)/(n − 1), clamped at 0."""
        if n <= 0:
            return cls(0)
        mean = total / n
        variance = max(total_sq - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
        return cls(n, mean, variance)


def welch_worse_than(
    current: Aggregate, baseline: Aggregate, *, margin: float, higher_is_better: bool
) -> tuple[float, float, float]:
    """One-sided Welch test that the current mean is worse than the baseline by more than `margin` (relative).

    Higher is better: H0 μc ≥ (1 − m)·μb against H1 μc < (1 − m)·μb, with
    t = (x̄c − k·x̄b) / √(sc²/nc + k²·sb²/nb), k = 1 − m, and the
    Welch–Satterthwaite degrees of freedom
    ν = (a + b)² / (a²/(nc − 1) + b²/(nb − 1)), a = sc²/nc, b = k²·sb²/nb.
    Lower is better mirrors it with k = 1 + m. Returns (t, ν, p) where
    p = P(T_ν ≤ t) in the "worse" orientation: small p means clearly worse.
    """
    sign, k = (1.0, 1.0 - margin) if higher_is_better else (-1.0, 1.0 + margin)
    diff = sign * (current.mean - k * baseline.mean)
    a = current.variance / current.n
    b = k * k * baseline.variance / baseline.n
    se = math.sqrt(a + b)
    if se == 0.0:
        return (-math.inf if diff < 0 else math.inf), math.inf, (0.0 if diff < 0 else 1.0)
    t = diff / se
    denominator = a * a / (current.n - 1) + b * b / (baseline.n - 1)
    df = (a + b) ** 2 / denominator if denominator > 0 else math.inf
    p = float(special.ndtr(t) if math.isinf(df) else special.stdtr(df, t))
    return t, df, p


def mean_ci(values: list[float], confidence: float = 0.95) -> dict[str, Any]:
    """Mean and a two-sided confidence interval.

    0/1 scores: the Wilson score interval, (p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n),
    which stays inside [0, 1] and is not degenerate at 0 or 1. Other scores:
    Student's t, x̄ ± t(n−1)·s/√n, clipped to [0, 1]. With n < 2 the interval is unknown.
    """
    n = len(values)
    if n == 0:
        return {"mean": None, "ci": [None, None], "n": 0}
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "ci": [None, None], "n": n}
    if all(v in (0.0, 1.0) for v in values):
        z = stats.norm.ppf(0.5 + confidence / 2)
        centre = (mean + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(mean * (1 - mean) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        low, high = centre - half, centre + half
    else:
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
        low, high = mean - half, mean + half
    return {"mean": mean, "ci": [max(0.0, low), min(1.0, high)], "n": n}


def paired_test(candidate: list[float], baseline: list[float], confidence: float = 0.95) -> dict[str, Any]:
    """Paired t-test over cases: d_i = candidate_i − baseline_i, t = d̄ / (s_d/√n) with n−1 df.

    Returns the mean difference, its t interval and the two-sided p-value
    (scipy.stats.ttest_rel). When every difference is the same the test is
    degenerate: p = 1 if they are all zero, else 0.
    """
    n = len(candidate)
    diffs = [c - b for c, b in zip(candidate, baseline, strict=False)]
    if n < 2:
        return {"diff": diffs[0] if diffs else None, "ci": [None, None], "p_value": None, "n": n}
    mean = sum(diffs) / n
    if all(abs(d - diffs[0]) < 1e-12 for d in diffs):
        return {"diff": mean, "ci": [mean, mean], "p_value": 1.0 if abs(mean) < 1e-12 else 0.0, "n": n}
    result = stats.ttest_rel(candidate, baseline)
    interval = result.confidence_interval(confidence)
    return {"diff": mean, "ci": [float(interval.low), float(interval.high)], "p_value": float(result.pvalue), "n": n}
