"""The on-call page in Chromium: the chart is drawn from local plotly.js, the banner is acknowledged,
and the one-click rollback lands in the deployment timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest

from promptreg.models import LabelMove, MoveVia, ReviewPolicy
from rollout.models import RollbackIncident
from rollout.monitoring import run_check
from tests.conftest import PASSWORD, make_user
from tests.rollout.monitor_story import activate, add_scores, live, monitor, noisy, publish

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
    page.goto("/accounts/login/?next=/oncall/")
    page.get_by_label("Username").fill("dave")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/oncall/")

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
