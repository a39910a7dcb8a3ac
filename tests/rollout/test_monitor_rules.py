"""The monitor's rules and state machine as pure functions, against scipy's reference implementation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from experiments.stats import Aggregate, welch_worse_than
from rollout.models import Outcome
from rollout.rules import RuleResult, Streaks, advance, combine, floor_rule, relative_rule


def agg(values) -> Aggregate:
    values = np.asarray(values, dtype=float)
    return Aggregate.from_sums(len(values), values.sum(), (values**2).sum())


def test_aggregate_from_sums_matches_numpy():
    values = np.random.default_rng(3).normal(0.7, 0.2, 500)
    a = agg(values)
    assert a.n == 500
    assert a.mean == pytest.approx(values.mean())
    assert a.variance == pytest.approx(values.var(ddof=1))
    assert Aggregate.from_sums(0, 0, 0) == Aggregate(0)
    assert Aggregate.from_sums(1, 0.5, 0.25) == Aggregate(1, 0.5, 0.0)


@pytest.mark.parametrize("margin", [0.0, 0.03, 0.1])
def test_welch_matches_scipy_one_sided_with_a_scaled_baseline(margin):
    rng = np.random.default_rng(7)
    current, baseline = rng.normal(0.7, 0.15, 80), rng.normal(0.8, 0.1, 400)
    t, df, p = welch_worse_than(agg(current), agg(baseline), margin=margin, higher_is_better=True)
    # H1: μc < (1 − m)·μb  ⇔  Welch's test of current against the baseline scaled by (1 − m).
    k = 1 - margin
    ref = stats.ttest_ind(current, k * baseline, equal_var=False, alternative="less")
    assert t == pytest.approx(ref.statistic)
    assert p == pytest.approx(ref.pvalue)
    assert df == pytest.approx(ref.df)


def test_welch_lower_is_better_mirrors_with_a_raised_baseline():
    rng = np.random.default_rng(8)
    current, baseline = rng.normal(1300, 200, 60), rng.normal(1000, 150, 300)
    _, _, p = welch_worse_than(agg(current), agg(baseline), margin=0.05, higher_is_better=False)
    ref = stats.ttest_ind(current, 1.05 * baseline, equal_var=False, alternative="greater")
    assert p == pytest.approx(ref.pvalue)


def test_floor_rule_outcomes_and_direction():
    low = Aggregate(25, 0.5, 0.01)
    assert floor_rule(low, threshold=0.6, min_samples=20, higher_is_better=True).outcome == Outcome.FAILED
    assert floor_rule(low, threshold=0.4, min_samples=20, higher_is_better=True).outcome == Outcome.SUCCESSFUL
    assert floor_rule(low, threshold=0.6, min_samples=30, higher_is_better=True).outcome == Outcome.INCONCLUSIVE
    slow = Aggregate(25, 2500.0, 100.0)  # latency: lower is better, so above the threshold fails
    assert floor_rule(slow, threshold=2000, min_samples=20, higher_is_better=False).outcome == Outcome.FAILED
    assert floor_rule(slow, threshold=3000, min_samples=20, higher_is_better=False).outcome == Outcome.SUCCESSFUL


def test_relative_rule_catches_a_ten_percent_drop_and_passes_an_equal_version():
    rng = np.random.default_rng(11)
    baseline = agg(rng.normal(0.8, 0.15, 2000))
    dropped = relative_rule(
        agg(rng.normal(0.72, 0.15, 300)), baseline, margin=0.03, alpha=0.01, min_samples=30, higher_is_better=True
    )
    assert dropped.outcome == Outcome.FAILED
    assert dropped.evidence["p_value"] < 0.01 and dropped.evidence["baseline_n"] == 2000
    same = relative_rule(
        agg(rng.normal(0.8, 0.15, 300)), baseline, margin=0.03, alpha=0.01, min_samples=30, higher_is_better=True
    )
    assert same.outcome == Outcome.SUCCESSFUL
    # within the margin: 2% worse is tolerated
    slight = relative_rule(
        agg(rng.normal(0.784, 0.15, 5000)), baseline, margin=0.03, alpha=0.01, min_samples=30, higher_is_better=True
    )
    assert slight.outcome == Outcome.SUCCESSFUL


def test_relative_rule_is_inconclusive_without_enough_data_or_a_baseline():
    current = Aggregate(10, 0.5, 0.01)
    assert (
        relative_rule(current, None, margin=0.03, alpha=0.01, min_samples=5, higher_is_better=True).outcome
        == Outcome.INCONCLUSIVE
    )
    assert (
        relative_rule(
            current, Aggregate(500, 0.8, 0.01), margin=0.03, alpha=0.01, min_samples=30, higher_is_better=True
        ).outcome
        == Outcome.INCONCLUSIVE
    )


def test_relative_rule_with_zero_variance():
    flat_bad, flat_good = Aggregate(50, 0.5, 0.0), Aggregate(50, 0.9, 0.0)
    base = Aggregate(50, 0.8, 0.0)
    assert (
        relative_rule(flat_bad, base, margin=0.03, alpha=0.01, min_samples=30, higher_is_better=True).outcome
        == Outcome.FAILED
    )
    assert (
        relative_rule(flat_good, base, margin=0.03, alpha=0.01, min_samples=30, higher_is_better=True).outcome
        == Outcome.SUCCESSFUL
    )


def test_combine_any_failure_fails_any_success_passes():
    fail, ok, unsure = (RuleResult("r", o, "") for o in (Outcome.FAILED, Outcome.SUCCESSFUL, Outcome.INCONCLUSIVE))
    assert combine([ok, fail]) == Outcome.FAILED
    assert combine([ok, unsure]) == Outcome.SUCCESSFUL
    assert combine([unsure, unsure]) == Outcome.INCONCLUSIVE


def test_state_machine_trips_after_consecutive_failures_and_pages_once_on_inconclusive():
    limits = {"consecutive_failures": 2, "inconclusive_before_page": 3}
    s, trip, page = advance(Streaks(), Outcome.FAILED, **limits)
    assert (s, trip, page) == (Streaks(1, 0), False, False)
    s, trip, _ = advance(s, Outcome.INCONCLUSIVE, **limits)  # an unsure check does not break the run
    assert (s.failures, trip) == (1, False)
    s, trip, _ = advance(s, Outcome.FAILED, **limits)
    assert trip and s.failures == 2
    s, trip, _ = advance(Streaks(1, 0), Outcome.SUCCESSFUL, **limits)
    assert (s, trip) == (Streaks(), False)
    pages = []
    s = Streaks()
    for outcome in [Outcome.INCONCLUSIVE, Outcome.ERROR, Outcome.INCONCLUSIVE, Outcome.INCONCLUSIVE]:
        s, _, page = advance(s, outcome, **limits)
        pages.append(page)
    assert pages == [False, False, True, False]
