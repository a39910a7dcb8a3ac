"""experiments.stats against independent numbers: GrowthBook's engine, scipy on raw data, and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from experiments import decision, stats
from experiments.decision import Design, Guardrail
from experiments.stats import SampleStats

# ../shared/reference/gbstats_oracle.txt (gbstats 0.8.0, scipy 1.17.1), copied so the test stands alone.
# The file prints means to 5 decimals; its effect +0.014646 fixes the treatment mean at 0.720216
# (which prints as 0.72022), so that is the value used; the variances are as printed.
ORACLE_N = 500
ORACLE_CONTROL = (0.70557, 0.021394)
ORACLE_TREATMENT = (0.720216, 0.023239)


def from_summary(n: int, mean: float, var: float) -> SampleStats:
    return SampleStats(n, n * mean, var * (n - 1) + n * mean * mean)


def sig4(x: float) -> float:
    return float(f"{x:.4g}")


@pytest.fixture
def oracle():
    return from_summary(ORACLE_N, *ORACLE_CONTROL), from_summary(ORACLE_N, *ORACLE_TREATMENT)


def test_welch_matches_gbstats_to_4_significant_digits(oracle):
    result = stats.welch_test(*oracle, alpha=0.05)
    a, r = result.absolute, result.relative
    assert [sig4(v) for v in (a.effect, *a.ci, a.p_value, a.se)] == [0.01465, -0.003894, 0.03319, 0.1214, 0.009448]
    assert [sig4(v) for v in (r.effect, *r.ci, r.p_value, r.se)] == [0.02076, -0.005782, 0.0473, 0.1251, 0.01352]
    assert sig4(result.df) == 996.3


def test_non_inferiority_matches_gbstats(oracle):
    result = stats.non_inferiority_test(*oracle, margin=0.02, higher_is_better=True, alpha=0.05)
    assert round(result.p_value, 6) == 0.000129  # the oracle prints 6 decimals
    assert sig4(result.bound) == -0.0009092  # printed in full in the oracle: -0.0009091668992517836
    # lower is better, mirrored data: the same test
    c, t = oracle
    flipped = stats.non_inferiority_test(
        SampleStats(c.n, -c.sum, c.sum_sq), SampleStats(t.n, -t.sum, t.sum_sq), margin=0.02, higher_is_better=False
    )
    assert round(flipped.p_value, 6) == 0.000129
    assert sig4(flipped.bound) == 0.0009092


@pytest.mark.parametrize(("observed", "p"), [([500, 500], 1.0), ([500, 440], 0.05035), ([5000, 4800], 0.04335)])
def test_srm_matches_gbstats(observed, p):
    assert sig4(stats.srm_test(observed, [0.5, 0.5])) == p


@pytest.mark.parametrize(
    ("tuning", "lo", "hi", "p"), [(1000, -0.01403, 0.04332, 1.0), (5000, -0.01714, 0.04643, 0.7697)]
)
def test_confidence_sequence_matches_gbstats(oracle, tuning, lo, hi, p):
    result = stats.sequential_test(stats.welch_test(*oracle), n_total=1000, alpha=0.05, tuning=tuning)
    assert [sig4(result.absolute.ci[0]), sig4(result.absolute.ci[1]), sig4(result.absolute.p_value)] == [lo, hi, p]


@pytest.mark.parametrize("seed", range(8))
def test_welch_matches_scipy_on_raw_data(seed):
    rng = np.random.default_rng(seed)
    n_c, n_t = rng.integers(20, 3000, size=2)
    control = rng.normal(rng.uniform(-5, 5), rng.uniform(0.1, 3), n_c)
    treatment = rng.normal(rng.uniform(-5, 5), rng.uniform(0.1, 3), n_t)
    alpha = float(rng.choice([0.01, 0.05, 0.1]))
    ours = stats.welch_test(SampleStats.of(control), SampleStats.of(treatment), alpha=alpha)
    theirs = sps.ttest_ind(treatment, control, equal_var=False)
    ci = theirs.confidence_interval(1 - alpha)
    assert ours.absolute.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)
    assert ours.absolute.ci[0] == pytest.approx(ci.low, rel=1e-9)
    assert ours.absolute.ci[1] == pytest.approx(ci.high, rel=1e-9)
    assert ours.df == pytest.approx(theirs.df, rel=1e-9)


def test_proportion_test_matches_unpooled_z_on_raw_data():
    rng = np.random.default_rng(7)
    control, treatment = rng.binomial(1, 0.30, 800), rng.binomial(1, 0.36, 700)
    ours = stats.proportion_test(SampleStats.of(control), SampleStats.of(treatment))
    pc, pt = control.mean(), treatment.mean()
    se = math.sqrt(np.var(control) / len(control) + np.var(treatment) / len(treatment))
    z = (pt - pc) / se
    assert ours.absolute.p_value == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-9)
    assert ours.absolute.ci[0] == pytest.approx(pt - pc - sps.norm.ppf(0.975) * se, rel=1e-9)


def test_holm_and_benjamini_hochberg():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.benjamini_hochberg([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.04, 0.04])
    p = np.random.default_rng(3).uniform(0, 0.2, 25)
    assert stats.benjamini_hochberg(list(p)) == pytest.approx(list(sps.false_discovery_control(p, method="bh")))


def test_required_sample_size_is_the_textbook_number():
    # d = 0.2, α = 0.05 two-sided, 80% power: 393 per group (normal approximation)
    assert stats.required_sample_size(1.0, 0.2, alpha=0.05, power=0.8) == (393, 393)
    control, treatment = stats.required_sample_size(1.0, 0.2, treatment_fraction=0.2)
    assert stats.power_at(control, treatment, 1.0, 0.2) == pytest.approx(0.8, abs=0.002)
    assert treatment == pytest.approx(control / 4, rel=0.01)


# --- simulation: seeded and vectorised, a second or two ---------------------

SIMS = 2000


def _mc_tolerance(rate: float) -> float:
    return 3 * math.sqrt(rate * (1 - rate) / SIMS)


def _cumulative_stats(x: np.ndarray, looks: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    per_look = x.shape[1] // looks
    s, ss = np.cumsum(x, axis=1), np.cumsum(x * x, axis=1)
    return [((k + 1) * per_look, s[:, (k + 1) * per_look - 1], ss[:, (k + 1) * per_look - 1]) for k in range(looks)]


def _aa_rejections(*, looks: int, per_arm: int, sequential: bool) -> float:
    rng = np.random.default_rng(20260101)
    control = rng.normal(0.7, 0.15, (SIMS, per_arm))
    treatment = rng.normal(0.7, 0.15, (SIMS, per_arm))
    rejected = np.zeros(SIMS, dtype=bool)
    for (n, sc, ssc), (_, st, sst) in zip(
        _cumulative_stats(control, looks), _cumulative_stats(treatment, looks), strict=False
    ):
        for i in np.flatnonzero(~rejected):
            result = stats.welch_test(SampleStats(n, sc[i], ssc[i]), SampleStats(n, st[i], sst[i]))
            if sequential:
                result = stats.sequential_test(result, n_total=2 * n)
            rejected[i] = result.absolute.p_value < 0.05
    return rejected.mean()


def test_sequential_mode_keeps_false_positives_at_alpha_over_20_looks():
    rate = _aa_rejections(looks=20, per_arm=1000, sequential=True)
    assert rate <= 0.05 + _mc_tolerance(0.05)


def test_fixed_horizon_at_one_look_keeps_alpha_but_peeking_does_not():
    once = _aa_rejections(looks=1, per_arm=1000, sequential=False)
    assert abs(once - 0.05) <= _mc_tolerance(0.05)
    peeking = _aa_rejections(looks=20, per_arm=1000, sequential=False)
    assert peeking > 0.15  # why the sequential mode exists


def test_power_at_the_planned_sample_size_is_the_target():
    n_c, n_t = stats.required_sample_size(0.15, 0.03, alpha=0.05, power=0.8, treatment_fraction=0.3)
    rng = np.random.default_rng(11)
    control = rng.normal(0.70, 0.15, (SIMS, n_c))
    treatment = rng.normal(0.73, 0.15, (SIMS, n_t))
    hits = 0
    for c, t in zip(control, treatment, strict=False):
        hits += (
            stats.welch_test(
                SampleStats(n_c, c.sum(), (c * c).sum()), SampleStats(n_t, t.sum(), (t * t).sum())
            ).absolute.p_value
            < 0.05
        )
    assert abs(hits / SIMS - 0.8) <= 0.03


# --- decisions ----------------------------------------------------------------


def normal_stats(rng, n, mean, sd=0.15):
    return SampleStats.of(rng.normal(mean, sd, n))


def decide(control, treatment, guard=None, **design):
    data = {"quality_score": (control, treatment)}
    guardrails = ()
    if guard is not None:
        data["latency_ms"] = guard
        guardrails = (Guardrail("latency_ms", margin=50, higher_is_better=False),)
    return decision.analyse(Design(primary_metric="quality_score", guardrails=guardrails, **design), data)


def test_clear_win_ships_and_explains_it():
    rng = np.random.default_rng(1)
    result = decide(normal_stats(rng, 2000, 0.70), normal_stats(rng, 2000, 0.75))
    assert result.decision == decision.SHIP
    assert "better" in result.explanation and "Ship" in result.explanation
    assert result.primary["relative_lift"] == pytest.approx(0.05 / 0.70, abs=0.02)


def test_clear_loss_keeps_control():
    rng = np.random.default_rng(2)
    assert decide(normal_stats(rng, 2000, 0.75), normal_stats(rng, 2000, 0.70)).decision == decision.KEEP


def test_lower_is_better_primary_flips_the_verdict():
    rng = np.random.default_rng(2)
    result = decide(normal_stats(rng, 2000, 0.75), normal_stats(rng, 2000, 0.70), higher_is_better=False)
    assert result.decision == decision.SHIP


def test_no_difference():
    rng = np.random.default_rng(3)
    result = decide(normal_stats(rng, 2000, 0.70), normal_stats(rng, 2000, 0.70))
    assert result.decision == decision.NO_DIFFERENCE


def test_too_few_sessions_is_insufficient_data():
    rng = np.random.default_rng(4)
    result = decide(normal_stats(rng, 50, 0.5), normal_stats(rng, 50, 0.9), min_samples_per_variant=100)
    assert result.decision == decision.INSUFFICIENT and "at least 100" in result.explanation


def test_fixed_horizon_waits_for_the_planned_size_even_with_a_big_effect():
    rng = np.random.default_rng(4)
    control, treatment = normal_stats(rng, 300, 0.5), normal_stats(rng, 300, 0.9)
    assert decide(control, treatment, sequential=False, required_n=(400, 400)).decision == decision.INSUFFICIENT
    assert decide(control, treatment, sequential=False, required_n=(300, 300)).decision == decision.SHIP


def test_sample_ratio_mismatch_blocks_everything():
    rng = np.random.default_rng(5)
    result = decide(normal_stats(rng, 1000, 0.70), normal_stats(rng, 1200, 0.80))
    assert result.decision == decision.INVALID_SRM
    assert result.srm["ok"] is False and result.srm["p_value"] < 0.001


def test_a_degraded_guardrail_rejects_a_winning_treatment():
    rng = np.random.default_rng(6)
    latency = (normal_stats(rng, 2000, 400, 60), normal_stats(rng, 2000, 500, 60))
    result = decide(normal_stats(rng, 2000, 0.70), normal_stats(rng, 2000, 0.75), guard=latency)
    assert result.decision == decision.GUARDRAIL
    assert result.guardrails[0]["degraded"] and not result.guardrails[0]["non_inferior"]


def test_a_guardrail_within_margin_lets_it_ship():
    rng = np.random.default_rng(6)
    latency = (normal_stats(rng, 2000, 400, 60), normal_stats(rng, 2000, 405, 60))
    result = decide(normal_stats(rng, 2000, 0.70), normal_stats(rng, 2000, 0.75), guard=latency)
    assert result.decision == decision.SHIP
    assert result.guardrails[0]["non_inferior"] and result.guardrails[0]["p_value"] < 0.05


def test_an_unproven_guardrail_blocks_shipping():
    rng = np.random.default_rng(6)
    noisy = (normal_stats(rng, 2000, 400, 2000), normal_stats(rng, 2000, 420, 2000))
    result = decide(normal_stats(rng, 2000, 0.70), normal_stats(rng, 2000, 0.75), guard=noisy)
    assert result.decision == decision.GUARDRAIL
    assert "cannot yet rule out" in result.explanation
