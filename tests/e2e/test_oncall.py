"""The on-call page in Chromium: the chart is drawn from local plotly.js, the banner is acknowledged,
the one-click rollback lands in the deployment timeline, and canaries are shown and rolled back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from experiments.creation import experiment_create
from experiments.services import experiment_start
from promptreg.models import LabelMove, MoveVia, ReviewPolicy
from rollout.models import Monitor, RollbackIncident
from rollout.monitoring import run_check
from tests.conftest import make_user
from tests.e2e.test_dashboard_story import sign_in
from tests.rollout.monitor_story import CLI, activate, add_scores, canary, canary_story, live, monitor, noisy, publish

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(120),
]


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

    # Roll back: the button opens the prompt page's dialog, which names the target and when it was live; nothing
    # moves on the first click, a reason is required, and the page comes back to the on-call page.
    page.get_by_role("link", name="Roll back support-system from v2").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator(".rollback-target")).to_contain_text("Production goes from v2 back to v1 (live ")
    assert LabelMove.objects.filter(via=MoveVia.BUTTON).count() == 0
    dialog.get_by_role("button", name="Roll back to v1").click()
    assert dialog.get_by_label("Reason (required)").evaluate("element => element.validity.valueMissing")
    assert LabelMove.objects.filter(via=MoveVia.BUTTON).count() == 0
    dialog.get_by_label("Reason (required)").fill("v2 answers are stale too")
    dialog.get_by_role("button", name="Roll back to v1").click()
    page.wait_for_url("**/oncall/")
    expect(page.locator(".messages")).to_contain_text("went from v2 back to v1")
    timeline = page.locator("table.timeline tbody tr").first.inner_text()
    assert "v2 → v1" in timeline and "dave" in timeline and "v2 answers are stale too" in timeline
    move = LabelMove.objects.filter(via=MoveVia.BUTTON).get()
    assert (move.to_version.number, move.reason) == (1, "v2 answers are stale too")


def test_oncall_page_fits_a_phone_and_shows_a_running_experiment(browser_page):
    """390 px wide: nothing scrolls sideways (tables become label/value lists), and a running A/B experiment is
    shown with its traffic share next to the canary of another prompt."""
    auto_rolled_back_v3()
    publish(2, name="billing-system")
    activate(1, name="billing-system")
    experiment = experiment_create(
        actor=CLI, prompt="billing-system", control_version=1, treatment_version=2, traffic_fraction=0.3
    )
    experiment_start(experiment_id=experiment.pk, actor=CLI)
    make_user("dave", "Deployer")
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, "dave")
    page.goto("/oncall/")
    page.locator(".oncall-prompt .chart .main-svg").first.wait_for()
    expect(page.locator(f"#experiment-{experiment.pk}")).to_contain_text(
        "v2 gets 30% of sessions, v1 (production) the rest"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    def column_name(cell) -> str:  # stacked cells name their column before the value
        return cell.evaluate("element => getComputedStyle(element, '::before').content")

    assert column_name(page.locator("table.stats tr.live td").nth(1)) == '"Quality (evaluation score)"'
    assert column_name(page.locator("table.timeline tbody tr").first.locator("td").last) == '"Why"'
    button = page.get_by_role("link", name="Roll back support-system from v2")
    box = button.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390


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

    assert (
        f"canary of v2 (canary #{first.pk}) rolled back automatically; all traffic on v1"
        in page.locator("#rollback-banner").inner_text()
    )
    running = page.locator(f"#canary-{second.pk}")
    assert (
        "v3 gets 5% of sessions" in running.inner_text()
        and "Canary monitor: Waiting for scores" in running.inner_text()
    )
    page.get_by_label("Reason").nth(0).fill("support lead saw odd answers")
    page.get_by_role("button", name="Roll back canary v3").click()
    page.wait_for_url(f"**/experiments/ab/{second.pk}/")
    assert "support lead saw odd answers" in page.locator("#end-reason").inner_text()
    second.refresh_from_db()
    assert (second.state, second.end_reason, live()) == ("concluded", "support lead saw odd answers", 1)
