"""Seeded simulations in simulated time through the monitor's real rules and state machine."""

from __future__ import annotations

from rollout.simulation import DAY, Stream, default_monitor, simulate


def test_a_stable_noisy_stream_for_30_days_never_rolls_back():
    for rate in (0.2, 1.0):
        result = simulate(Stream(rate=rate, daily_amplitude=0.01), seconds=30 * DAY, seed=20261124)
        assert result.checks == 30 * 24 * 60
        assert result.trips == [], f"false rollbacks at {rate}/s: {result.trips[:5]}"


def test_a_ten_percent_drop_at_one_score_per_second_is_caught_within_the_window_plus_two_intervals():
    monitor = default_monitor()
    limit = monitor.relative_window_minutes * 60 + 2 * monitor.interval_seconds
    for seed in range(5):
        result = simulate(
            Stream(rate=1.0, drop=0.10), seconds=3600, seed=seed, monitor=monitor, stop_at_first_trip=True
        )
        assert result.first_trip is not None and result.first_trip <= limit, (seed, result.first_trip)
        assert result.first_trip <= 5 * 60  # the benchmark's goal


def test_a_drop_inside_the_margin_is_tolerated():
    result = simulate(Stream(rate=10.0, drop=0.01), seconds=6 * 3600, seed=3)
    assert result.trips == []


def test_a_stable_canary_running_for_30_days_is_never_concluded():
    # the concurrent baseline moves with the daily swing, so only noise is left to fool it
    result = simulate(Stream(rate=10.0, canary=0.05, daily_amplitude=0.02), seconds=30 * DAY, seed=20261201)
    assert result.checks == 30 * 24 * 60
    assert result.trips == [], f"false canary rollbacks: {result.trips[:5]}"


def test_stable_canaries_on_little_traffic_are_not_concluded():
    # 0.05 scores/s reach the canary: a 15-minute window holds ~45 of them and concludes a few of these
    # 6-hour canaries by chance; all the scores since the start conclude none
    def concluded(sliding: bool) -> list[int]:
        stream = Stream(rate=1.0, canary=0.05, canary_sliding_window=sliding)
        return [
            seed for seed in range(200) if simulate(stream, seconds=6 * 3600, seed=seed, stop_at_first_trip=True).trips
        ]

    assert concluded(sliding=False) == []
    assert len(concluded(sliding=True)) >= 2


def test_a_ten_percent_worse_canary_at_5_percent_of_10_scores_per_second_is_caught_within_the_window_plus_two_intervals():  # noqa: E501
    monitor = default_monitor()
    limit = monitor.relative_window_minutes * 60 + 2 * monitor.interval_seconds
    for seed in range(5):
        result = simulate(
            Stream(rate=10.0, drop=0.10, canary=0.05), seconds=3600, seed=seed, monitor=monitor, stop_at_first_trip=True
        )
        assert result.first_trip is not None and result.first_trip <= limit, (seed, result.first_trip)
