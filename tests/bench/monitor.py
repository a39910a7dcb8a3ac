"""Monitor benchmark in simulated time: detection delay and false rollbacks vs drop size and score rate.

    python tests/bench/monitor.py [--seeds 5] [--days 30]

For each score rate (0.2, 1, 10 per second) a bad version is activated with its
mean quality 5%, 10% or 20% below the old one (0.8, sd 0.15); the delay is the
time from activation to the check that trips (median and worst over seeds,
"—" = not detected within 2 hours). A stable stream with an ordinary daily
swing (±0.005) runs for 30 days to count false rollbacks. The shipped default
monitor (floor 0.6 + relative rule, 60 s interval, 2 failures in a row) is
compared with the baseline measured in the same run: the team's original rule
alone, a floor at a guessed threshold of 0.75.

Goal: a 10% drop at 1 score/s detected in ≤ 5 minutes, no false rollback in 30 stable days.

Then canaries: the new version gets 5% of the traffic (1, 10 or 100 scores/s in
all), and the canary monitor compares all its scores since the start with the
control's over the same span; "false" counts the canaries a stable stream would have concluded in 30
days of checks. Then the false conclusions that matter for a canary, which runs
for hours: of 500 stable 6-hour canaries, how many were concluded by chance,
with the shipped rule (all the canary's scores since its start against the
control's) and, as the baseline in the same run, a 15-minute sliding window.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "promptreg.settings")

import django  # noqa: E402

django.setup()

from rollout.simulation import DAY, Stream, default_monitor, simulate  # noqa: E402

RATES = (0.2, 1.0, 10.0)
CANARY_RATES = (1.0, 10.0, 100.0)
CANARY_SHARE = 0.05
STABLE_CANARIES = 500
CANARY_HOURS = 6
DROPS = (0.05, 0.10, 0.20)
HORIZON = 2 * 3600


def monitors():
    return {
        "default (floor 0.6 + relative)": lambda: default_monitor(),
        "baseline: floor 0.75 only": lambda: default_monitor(floor_threshold=0.75, relative_enabled=False),
    }


def fmt(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f} min"


def table(make, rates, canary: float, args) -> tuple[dict[tuple[float, float], float | None], dict[float, int]]:
    """Print one table (a row per rate); return the worst delay per (rate, drop) and the false trips per rate."""
    worst_delays, false_trips = {}, {}
    print(
        f"{'rate/s':>7} | "
        + " | ".join(f"{int(d * 100)}% drop: median (worst)" for d in DROPS)
        + f" | false rollbacks in {args.days:g} days"
    )
    for rate in rates:
        cells = []
        for drop in DROPS:
            delays = [
                simulate(
                    Stream(rate=rate, drop=drop, canary=canary),
                    seconds=HORIZON,
                    seed=seed,
                    monitor=make(),
                    stop_at_first_trip=True,
                ).first_trip
                for seed in range(args.seeds)
            ]
            found = [d for d in delays if d is not None]
            worst_delays[rate, drop] = None if len(found) < len(delays) else max(found)
            cells.append(
                f"{fmt(statistics.median(found) if found else None)} ({fmt(worst_delays[rate, drop])})".ljust(25)
            )
        stable = simulate(
            Stream(rate=rate, canary=canary), seconds=args.days * DAY, seed=1000 + int(rate * 10), monitor=make()
        )
        false_trips[rate] = len(stable.trips)
        print(f"{rate:>7g} | " + " | ".join(cells) + f" | {len(stable.trips)} ({stable.checks} checks)")
    return worst_delays, false_trips


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--days", type=float, default=30)
    args = parser.parse_args()
    started = time.perf_counter()
    goal_delay = goal_false = None
    for name, make in monitors().items():
        print(f"\n## {name}")
        worst_delays, false_trips = table(make, RATES, 0.0, args)
        if name.startswith("default"):
            goal_delay, goal_false = worst_delays[1.0, 0.10], false_trips[1.0]
    print(
        f"\n## canary at {CANARY_SHARE:.0%} of the traffic, default monitor (rate = all traffic; the canary sees "
        f"{CANARY_SHARE:.0%} of it)"
    )
    table(default_monitor, CANARY_RATES, CANARY_SHARE, args)
    print(f"\nstable {CANARY_HOURS}-hour canaries at {CANARY_SHARE:.0%} concluded by chance, of {STABLE_CANARIES}:")
    for rate in CANARY_RATES[:2]:
        counts = {
            label: sum(
                bool(
                    simulate(
                        Stream(rate=rate, canary=CANARY_SHARE, canary_sliding_window=sliding),
                        seconds=CANARY_HOURS * 3600,
                        seed=50_000 + seed,
                        stop_at_first_trip=True,
                    ).trips
                )
                for seed in range(STABLE_CANARIES)
            )
            for label, sliding in (("since the start (shipped)", False), ("15-minute window (baseline)", True))
        }
        print(f"{rate:>7g}/s | " + " | ".join(f"{label}: {count}" for label, count in counts.items()))
    ok = goal_delay is not None and goal_delay <= 300 and goal_false == 0
    print(
        f"\ngoal (10% drop at 1/s detected ≤ 5 min in every seed, 0 false rollbacks in {args.days:g} days): "
        f"worst {fmt(goal_delay)}, {goal_false} false → {'MET' if ok else 'NOT MET'}"
    )
    print(f"simulated in {time.perf_counter() - started:.1f} s of wall time")


if __name__ == "__main__":
    main()
