"""The experiment page draws its Plotly charts in a real browser from locally served plotly.js,
and the htmx refresh redraws them."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

from experiments.experiments import experiment_create, experiment_snapshot, experiment_start
from experiments.models import TREATMENT
from experiments.scores import scores_ingest
from promptreg.models import PRODUCTION, MoveVia, ReviewPolicy
from promptreg.services import Actor, label_move, version_publish
from tests.conftest import PASSWORD, make_user

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHARTS = 6

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.timeout(120)]


def running_experiment_with_data():
    cli = Actor(via=MoveVia.CLI)
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    for body in ("Hello {{ name }}", "Hi {{ name }}"):
        version_publish(name="support-system", kind="text", body=body, commit_message="c", actor=cli)
    label_move(name="support-system", label=PRODUCTION, version=1, actor=cli, reason="live")
    experiment = experiment_create(
        actor=cli, prompt="support-system", control_version=1, treatment_version=2, min_samples_per_variant=10,
        minimum_detectable_effect=0.05, baseline_sd=0.15, guardrails=[{"metric": "latency_ms", "direction": "lower_is_better", "margin": 50}],
    )
    experiment_start(experiment_id=experiment.pk, actor=cli)
    for start in (0, 100, 200):
        items = []
        for i in range(start, start + 100):
            session = f"s{i}"
            treated = experiment.assign(session) == TREATMENT
            items.append({"id": session, "prompt": "support-system", "version": 2 if treated else 1, "session_id": session,
                          "experiment": experiment.pk, "metrics": {"quality_score": (0.75 if treated else 0.7) + (i % 9) / 40, "latency_ms": 400 + i % 13}})
        scores_ingest(scores=items, actor=cli)
        experiment_snapshot(experiment.pk)
    return experiment


def test_experiment_page_draws_and_refreshes_its_charts(live_server):
    experiment = running_experiment_with_data()
    make_user("dave", "Deployer")
    host = urlsplit(live_server.url).netloc
    requested: list[str] = []
    posted: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2400})
            page.on("request", lambda request: requested.append(request.url))
            page.on("request", lambda request: request.method == "POST" and posted.append(urlsplit(request.url).path))
            page.goto(f"{live_server.url}/accounts/login/?next=/experiments/ab/{experiment.pk}/", timeout=30_000)
            page.fill("input[name=username]", "dave")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit], input[type=submit]")
            page.wait_for_function(f"document.querySelectorAll('.chart .main-svg').length >= {CHARTS}", timeout=30_000)
            assert page.locator("#decision").inner_text() in {"ship_treatment", "no_significant_difference", "insufficient_data"}
            if os.environ.get("SCREENSHOT_DIR"):
                page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], "experiment.png"), full_page=True)
            page.evaluate("document.querySelectorAll('.chart').forEach(function (c) { c.classList.add('old'); })")
            page.click("text=Refresh now")
            page.wait_for_function(f"document.querySelectorAll('.chart:not(.old) .main-svg').length >= {CHARTS}", timeout=30_000)
        finally:
            browser.close()
    assert f"/experiments/ab/{experiment.pk}/refresh/" in posted
    assert [u for u in requested if urlsplit(u).netloc != host and not u.startswith("data:")] == []
