"""PUT/GET /api/v1/prompts/{name}/monitor: the monitor as code, validated before anything is saved."""

from __future__ import annotations

import pytest

from rollout.models import Monitor, MonitorCheck
from rollout.monitoring import run_check
from tests.rollout.monitor_story import activate, publish

URL = "/api/v1/prompts/support-system/monitor"
GOOD = {
    "metric": "quality_score",
    "interval_seconds": 30,
    "consecutive_failures": 3,
    "floor": {"threshold": 0.7, "window_minutes": 10, "min_samples": 25},
    "relative": {"margin": 0.05, "alpha": 0.02, "window_minutes": 20, "min_samples": 40},
    "enabled": True,
}


@pytest.fixture
def prompt(db, ungated):
    publish(1)
    activate(1)


def put(client, body):
    return client.put(URL, body, content_type="application/json")


def test_put_creates_then_replaces_the_monitor(api_as, prompt):
    client = api_as("deploy")
    r = put(client, GOOD)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["floor"] == GOOD["floor"] and body["relative"] == GOOD["relative"]
    assert (body["metric"], body["interval_seconds"], body["consecutive_failures"], body["enabled"]) == (
        "quality_score",
        30,
        3,
        True,
    )
    assert body["direction"] == "higher_is_better" and body["checks"] == []
    m = Monitor.objects.get()
    assert (m.floor_threshold, m.floor_window_minutes, m.relative_margin, m.relative_min_samples) == (0.7, 10, 0.05, 40)

    r = put(client, {**GOOD, "relative": None, "interval_seconds": 120})
    assert r.status_code == 200 and r.json()["relative"] is None
    m.refresh_from_db()
    assert (m.relative_enabled, m.interval_seconds, Monitor.objects.count()) == (False, 120, 1)
    assert m.history.count() == 2  # config changes are history-tracked
    assert put(client, {**GOOD, "enabled": False}).json()["state"] == "disabled"
    assert put(client, GOOD).json()["state"] == "waiting"


def test_get_returns_the_monitor_with_its_last_checks(api_as, prompt):
    put(api_as("deploy"), GOOD)
    run_check(Monitor.objects.get().id)
    r = api_as("read").get(URL)
    assert r.status_code == 200
    assert [c["outcome"] for c in r.json()["checks"]] == ["inconclusive"]
    assert r.json()["checks"][0]["version"] == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({**GOOD, "floor": {**GOOD["floor"], "window_minutes": -5}}, "floor_window_minutes"),
        ({**GOOD, "relative": {**GOOD["relative"], "window_minutes": -1}}, "relative_window_minutes"),
        ({**GOOD, "floor": {**GOOD["floor"], "threshold": 1.5}}, "floor_threshold"),
        ({**GOOD, "floor": {**GOOD["floor"], "threshold": -0.1}}, "floor_threshold"),
        ({**GOOD, "metric": "vibes"}, "metric"),
        ({**GOOD, "interval_seconds": 0}, "interval_seconds"),
        ({**GOOD, "consecutive_failures": 0}, "consecutive_failures"),
        ({**GOOD, "relative": {**GOOD["relative"], "alpha": 2}}, "relative_alpha"),
        ({**GOOD, "floor": None, "relative": None}, "floor_enabled"),
    ],
)
def test_bad_config_is_a_400_naming_the_field_and_nothing_is_saved(api_as, prompt, body, field):
    client = api_as("deploy")
    r = put(client, body)
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["code"] == "invalid_monitor" and field in error["fields"]
    assert not Monitor.objects.exists()
    # and an existing monitor is left exactly as it was
    assert put(client, GOOD).status_code == 200
    assert put(client, body).status_code == 400
    m = Monitor.objects.get()
    assert (m.floor_threshold, m.floor_window_minutes, m.metric, m.interval_seconds) == (0.7, 10, "quality_score", 30)
    assert m.history.count() == 1


def test_wrong_types_are_a_400(api_as, prompt):
    r = put(api_as("deploy"), {**GOOD, "interval_seconds": "soon"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"
    assert not Monitor.objects.exists()


def test_latency_thresholds_are_not_bounded_by_one(api_as, prompt):
    r = put(api_as("deploy"), {**GOOD, "metric": "latency_ms", "floor": {"threshold": 2500}})
    assert r.status_code == 200 and r.json()["direction"] == "lower_is_better"


def test_scopes_and_unknown_prompts(api_as, client, prompt):
    assert put(api_as("read"), GOOD).status_code == 403
    assert put(api_as("write"), GOOD).status_code == 403
    assert put(client, GOOD).status_code == 401
    assert not Monitor.objects.exists()
    r = api_as("deploy").put("/api/v1/prompts/nope-system/monitor", GOOD, content_type="application/json")
    assert r.status_code == 404 and r.json()["error"]["code"] == "prompt_not_found"
    assert api_as("read").get(URL).status_code == 404
    assert not MonitorCheck.objects.exists()


def test_folder_names_reach_the_monitor(api_as, db, ungated):
    publish(1, name="billing/refund-extraction")
    r = api_as("deploy").put("/api/v1/prompts/billing/refund-extraction/monitor", GOOD, content_type="application/json")
    assert r.status_code == 200 and r.json()["prompt"] == "billing/refund-extraction"
