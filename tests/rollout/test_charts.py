"""The on-call chart's numbers: 5-minute means per version, bucketed by the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rollout.charts import quality_figures, version_numbers
from tests.rollout.monitor_story import activate, add_scores, publish


def test_scores_are_averaged_per_version_in_5_minute_buckets_aligned_on_the_clock(db, ungated):
    v1, v2 = publish(2)
    activate(1)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    start -= timedelta(minutes=start.minute % 5)
    add_scores(v1, [0.2, 0.4], end=start + timedelta(minutes=4, seconds=59), spacing=120)  # 10:02:59 and 10:04:59
    add_scores(v1, [0.9], end=start + timedelta(minutes=5))  # the next bucket
    add_scores(v2, [0.5, 0.7, 0.6], end=start + timedelta(minutes=3), spacing=30)
    figure = quality_figures(version_numbers([v1.prompt_id]), {v1.prompt_id: "quality_score"})[v1.prompt_id]
    traces = {t["name"]: t for t in figure["data"]}
    assert traces["v1"]["x"] == [start.isoformat(), (start + timedelta(minutes=5)).isoformat()]
    assert [round(y, 9) for y in traces["v1"]["y"]] == [0.3, 0.9]
    assert traces["v1"]["customdata"] == [2, 1]
    assert traces["v2"]["x"] == [start.isoformat()] and round(traces["v2"]["y"][0], 9) == 0.6
    assert "v1 mean 0.500" in traces and "v2 mean 0.600" in traces  # weighted by count: (0.2 + 0.4 + 0.9) / 3
