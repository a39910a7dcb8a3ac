"""The on-call page in Chromium: the chart is drawn from local plotly.js, the banner is acknowledged,
the one-click rollback lands in the deployment timeline, and canaries are shown and rolled back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from promptreg.models import LabelMove, MoveVia, ReviewPolicy
from rollout.models import Monitor, RollbackIncident
from rollout.monitoring import run_check
from tests.conftest import make_user
from tests.e2e.test_dashboard_story import sign_in
from tests.rollout.monitor_story import activate, add_scores, canary, canary_story, live, monitor, noisy, publish

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.timeout(120)]


def auto_rolled_back_v3():
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    v1, v2, v3 = publish(3)
    for n in (1, 2):
        activate(n)
    add_scores(v2, noisy(0.8, 200, seed=1), spacing=5)
    activate(3)
    m = monitor(consecutive_failures=1)
    t0 = LabelMove.objects.filter(to_version=v3).latest("id").created_at
    add_scores(v3, noisy(0.4, 40, seed=2), end=t0 + timedelta(seconds=40))
    run_check(m.id, now=t0 + timedelta(seconds=41))
    assert live() == 2


def test_oncall_chart_banner_and_one_click_rollback(browser_page):
    auto_rolled_back_v3()
    make_user("dave", "Deployer")
    page = browser_page
    sign_in(page, "dave")
    page.goto("/oncall/")

    banner = page.locator("#rollback-banner")
    assert "rolled back automatically from v3 to v2" in banner.inner_text()
    chart = page.locator(".oncall-prompt .chart .main-svg").first
    chart.wait_for()
    assert "auto-rollback v2" in page.locator(".oncall-prompt .chart").first.inner_text()

    banner.get_by_role("button", name="Acknowledge").click()
    page.wait_for_load_state()
    assert page.locator("#rollback-banner").count() == 0
    assert RollbackIncident.objects.get().acknowledged_at is not None

    page.get_by_label("Reason").fill("v2 answers are stale too")
    page.get_by_role("button", name="Roll back v2").click()
    page.wait_for_load_state()
    assert "rolled back from v2 to v1" in page.locator(".messages").inner_text()
    timeline = page.locator("table.timeline tbody tr").first.inner_text()
    assert "v2 → v1" in timeline and "dave" in timeline and "v2 answers are stale too" in timeline
    move = LabelMove.objects.filter(via=MoveVia.BUTTON).get()
    assert (move.to_version.number, move.reason) == (1, "v2 answers are stale too")


def test_oncall_shows_an_automatic_canary_rollback_and_rolls_a_running_canary_back(browser_page):
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    v1, v2, watched, first = canary_story(consecutive_failures=1)
    end = first.started_at + timedelta(seconds=60)
    add_scores(v1, noisy(0.8, 19 * 60, seed=3), end=end, spacing=1 / 19)
    add_scores(v2, noisy(0.4, 60, seed=4), end=end)
    run_check(Monitor.objects.get(experiment=first).id, now=end + timedelta(seconds=1))
    (v3,) = publish(1)
    second = canary(3)
    make_user("dave", "Deployer")
    page = browser_page
    sign_in(page, "dave")
    page.goto("/oncall/")

    assert f"canary of v2 (canary #{first.pk}) rolled back automatically; all traffic on v1" in page.locator("#rollback-banner").inner_text()
    running = page.locator(f"#canary-{second.pk}")
    assert "v3 gets 5% of sessions" in running.inner_text() and "Canary monitor: Waiting for scores" in running.inner_text()
    page.get_by_label("Reason").nth(0).fill("support lead saw odd answers")
    page.get_by_role("button", name="Roll back canary v3").click()
    page.wait_for_url(f"**/experiments/ab/{second.pk}/")
    assert "support lead saw odd answers" in page.locator("#end-reason").inner_text()
    second.refresh_from_db()
    assert (second.state, second.end_reason, live()) == ("concluded", "support lead saw odd answers", 1)
