"""Simulated score streams through the monitor's real rules and state machine, in simulated time.

Used by the tests (seeded) and `tests/bench/monitor.py`. Scores are drawn one by
one (Beta-distributed quality, mean 0.8, sd 0.15, plus an optional daily cycle),
then summed per bucket, so a month at 10 scores/s runs in seconds; each check sees
exactly the (n, Σx, Σx²) the SQL aggregate would return.

A canary stream sends a share of the traffic to the new version and the rest to
the old one at the same time; the relative rule then compares all the new
version's scores since the start with the old one's over the same span, as a
canary monitor does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.stats import Aggregate
from rollout.models import Monitor
from rollout.rules import Streaks, advance, combine, evaluate_rules

DAY = 86_400.0
BASELINE_DAYS = 7


@dataclass(frozen=True)
class Stream:
    rate: float  # scores per second
    mean: float = 0.8
    sd: float = 0.15
    drop: float = 0.0  # relative drop of the new version's mean
    daily_amplitude: float = 0.005  # ordinary day/night swing of the mean
    canary: float = 0.0  # share of traffic the new version gets in a canary; 0: it was activated for everyone
    # A canary's relative rule reads all its scores since the start; the benchmark compares it with a
    # sliding window of the monitor's relative_window_minutes (True).
    canary_sliding_window: bool = False


@dataclass
class Result:
    checks: int
    trips: list[float]  # seconds after activation at which the monitor tripped

    @property
    def first_trip(self) -> float | None:
        return self.trips[0] if self.trips else None


def default_monitor(**overrides) -> Monitor:
    """An unsaved monitor with the shipped defaults and the team's floor of 0.6."""
    fields = {"floor_threshold": 0.6, "interval_seconds": 60}
    fields.update(overrides)
    return Monitor(**fields)


def _bucket_sums(
    rng: np.random.Generator, stream: Stream, rate: float, mean: float, start: float, seconds: float, bucket: float
) -> np.ndarray:
    """(n, Σx, Σx²) per bucket of `bucket` seconds over [start, start + seconds), `rate` scores a second."""
    buckets = int(round(seconds / bucket))
    counts = rng.poisson(rate * bucket, size=buckets)
    out = np.zeros((buckets, 3))
    out[:, 0] = counts
    var = stream.sd**2
    k = mean * (1 - mean) / var - 1  # Beta(a, b) with the requested mean and sd
    a, b = mean * k, (1 - mean) * k
    chunk = max(1, int(2_000_000 / max(rate * bucket, 1)))
    for lo in range(0, buckets, chunk):
        hi = min(buckets, lo + chunk)
        n = counts[lo:hi]
        total = int(n.sum())
        if total == 0:
            continue
        owner = np.repeat(np.arange(lo, hi), n)
        times = start + (owner + rng.random(total)) * bucket
        x = rng.beta(a, b, size=total) + stream.daily_amplitude * np.sin(2 * np.pi * times / DAY)
        np.clip(x, 0.0, 1.0, out=x)
        out[lo:hi, 1] = np.bincount(owner - lo, weights=x, minlength=hi - lo)
        out[lo:hi, 2] = np.bincount(owner - lo, weights=x * x, minlength=hi - lo)
    return out


def _cumulative(sums: np.ndarray) -> np.ndarray:
    return np.vstack([np.zeros(3), np.cumsum(sums, axis=0)])


def simulate(
    stream: Stream, *, seconds: float, seed: int, monitor: Monitor | None = None, stop_at_first_trip: bool = False
) -> Result:
    """Activate a new version at t = 0 (mean × (1 − drop)) after a week of the old one, or start
    it as a canary then, and check every interval.

    After a trip the streaks restart, as they would for the restored version,
    so a stable stream counts every false rollback it would have caused.
    """
    monitor = monitor or default_monitor()
    rng = np.random.default_rng(seed)
    interval = monitor.interval_seconds
    bucket = float(min(interval, 10))
    new_rate = stream.rate * stream.canary if stream.canary else stream.rate
    control = baseline = None
    if not stream.canary:  # the old version's week before the activation
        week = _bucket_sums(
            rng, stream, stream.rate, stream.mean, -BASELINE_DAYS * DAY, BASELINE_DAYS * DAY, 3600.0
        ).sum(axis=0)
        baseline = Aggregate.from_sums(int(week[0]), week[1], week[2])
    new = _cumulative(_bucket_sums(rng, stream, new_rate, stream.mean * (1 - stream.drop), 0.0, seconds, bucket))
    if stream.canary:  # the control's concurrent traffic
        control = _cumulative(_bucket_sums(rng, stream, stream.rate - new_rate, stream.mean, 0.0, seconds, bucket))

    def window(cumulative: np.ndarray, end_bucket: int, minutes: float | None) -> Aggregate:
        """The last `minutes` before `end_bucket`, or everything since t = 0 (None)."""
        start_bucket = 0 if minutes is None else max(0, end_bucket - int(round(minutes * 60 / bucket)))
        n, total, total_sq = cumulative[end_bucket] - cumulative[start_bucket]
        return Aggregate.from_sums(int(round(n)), total, total_sq)

    relative_minutes = None if stream.canary and not stream.canary_sliding_window else monitor.relative_window_minutes
    streaks, trips, checks = Streaks(), [], 0
    for t in np.arange(interval, seconds + 1e-9, interval):
        end_bucket = int(round(t / bucket))
        if control is not None:
            baseline = window(control, end_bucket, relative_minutes)
        results = evaluate_rules(
            monitor,
            window(new, end_bucket, monitor.floor_window_minutes),
            window(new, end_bucket, relative_minutes),
            baseline,
        )
        streaks, trip, _ = advance(
            streaks,
            combine(results),
            consecutive_failures=monitor.consecutive_failures,
            inconclusive_before_page=monitor.inconclusive_before_page,
        )
        checks += 1
        if trip:
            trips.append(float(t))
            streaks = Streaks()
            if stop_at_first_trip:
                break
    return Result(checks, trips)
