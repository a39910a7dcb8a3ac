"""Monitor rules: pure functions from aggregates to outcomes, and the streak state machine.

No database here: `rollout.monitoring` reads the aggregates and applies these, and the
simulations (`rollout.simulation`) run them on synthetic data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from experiments.stats import Aggregate, welch_worse_than
from rollout.models import Outcome

if TYPE_CHECKING:
    from rollout.models import Monitor


@dataclass(frozen=True)
class RuleResult:
    rule: str
    outcome: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


def floor_rule(current: Aggregate, *, threshold: float, min_samples: int, higher_is_better: bool) -> RuleResult:
    """Fail when the window mean is on the wrong side of `threshold`; inconclusive below `min_samples`."""
    evidence = {
        "n": current.n,
        "mean": current.mean if current.n else None,
        "threshold": threshold,
        "min_samples": min_samples,
    }
    if current.n < min_samples:
        return RuleResult("floor", Outcome.INCONCLUSIVE, f"floor: {current.n} scores, need {min_samples}", evidence)
    bad = current.mean < threshold if higher_is_better else current.mean > threshold
    word = ("below" if higher_is_better else "above") if bad else ("at or above" if higher_is_better else "at or below")
    outcome = Outcome.FAILED if bad else Outcome.SUCCESSFUL
    return RuleResult(
        "floor", outcome, f"floor: mean {current.mean:.4g} of {current.n} scores is {word} {threshold:.4g}", evidence
    )


def relative_rule(
    current: Aggregate,
    baseline: Aggregate | None,
    *,
    margin: float,
    alpha: float,
    min_samples: int,
    higher_is_better: bool,
) -> RuleResult:
    """Fail when the one-sided Welch test says the current version is worse than the baseline by more than the
    margin."""
    evidence: dict[str, Any] = {
        "n": current.n,
        "mean": current.mean if current.n else None,
        "margin": margin,
        "alpha": alpha,
        "min_samples": min_samples,
    }
    if baseline is None:
        return RuleResult("relative", Outcome.INCONCLUSIVE, "relative: no earlier version to compare with", evidence)
    evidence.update(baseline_n=baseline.n, baseline_mean=baseline.mean if baseline.n else None)
    if current.n < min_samples or baseline.n < min_samples:
        return RuleResult(
            "relative",
            Outcome.INCONCLUSIVE,
            f"relative: {current.n} current and {baseline.n} baseline scores, need {min_samples} of each",
            evidence,
        )
    t, df, p = welch_worse_than(current, baseline, margin=margin, higher_is_better=higher_is_better)
    evidence.update(t=t if math.isfinite(t) else None, df=df if math.isfinite(df) else None, p_value=p)
    worse = p < alpha
    verdict = "worse" if worse else "not shown worse"
    message = (
        f"relative: mean {current.mean:.4g} (n={current.n}) vs baseline {baseline.mean:.4g} (n={baseline.n}), "
        f"margin {margin:.1%}, one-sided Welch p={p:.3g} {'<' if worse else '≥'} α={alpha:g}: {verdict}"
    )
    return RuleResult("relative", Outcome.FAILED if worse else Outcome.SUCCESSFUL, message, evidence)


def combine(results: list[RuleResult]) -> str:
    """Any failing rule fails the check; otherwise any passing rule passes it; otherwise inconclusive."""
    outcomes = {r.outcome for r in results}
    if Outcome.FAILED in outcomes:
        return Outcome.FAILED
    if Outcome.SUCCESSFUL in outcomes:
        return Outcome.SUCCESSFUL
    return Outcome.INCONCLUSIVE


@dataclass(frozen=True)
class Streaks:
    """How many checks in a row failed, and how many in a row could not tell (inconclusive or error)."""

    failures: int = 0
    unsure: int = 0


def advance(
    streaks: Streaks, outcome: str, *, consecutive_failures: int, inconclusive_before_page: int
) -> tuple[Streaks, bool, bool]:
    """The monitor's state machine for one check: (new streaks, trip?, page?).

    A success clears both streaks; a failure extends the failure streak and
    trips at `consecutive_failures`; inconclusive or error checks leave the
    failure streak alone and page once, when `inconclusive_before_page` of
    them have come in a row.
    """
    if outcome == Outcome.SUCCESSFUL:
        return Streaks(), False, False
    if outcome == Outcome.FAILED:
        new = Streaks(failures=streaks.failures + 1)
        return new, new.failures >= consecutive_failures, False
    new = Streaks(failures=streaks.failures, unsure=streaks.unsure + 1)
    return new, False, new.unsure == inconclusive_before_page


def evaluate_rules(
    monitor: Monitor, floor_window: Aggregate, relative_window: Aggregate, baseline: Aggregate | None
) -> list[RuleResult]:
    """Apply the monitor's enabled rules to the three aggregates."""
    higher = monitor.spec.higher_is_better
    results = []
    if monitor.floor_enabled:
        threshold = monitor.floor_threshold
        assert threshold is not None, "an enabled floor has a threshold (Monitor.clean)"
        results.append(
            floor_rule(
                floor_window, threshold=threshold, min_samples=monitor.floor_min_samples, higher_is_better=higher
            )
        )
    if monitor.relative_enabled:
        results.append(
            relative_rule(
                relative_window,
                baseline,
                margin=monitor.relative_margin,
                alpha=monitor.relative_alpha,
                min_samples=monitor.relative_min_samples,
                higher_is_better=higher,
            )
        )
    return results
