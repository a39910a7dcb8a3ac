"""The experiment page in a real browser: Start and Ship confirm with the traffic share, the verdict is a sentence,
the Plotly charts are drawn from locally served plotly.js and redrawn by the htmx refresh."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from experiments.analysis import experiment_snapshot
from experiments.creation import experiment_create
from experiments.models import TREATMENT, Experiment
from experiments.scores import scores_ingest
from promptreg.models import PRODUCTION, Label, MoveVia, ReviewPolicy
from promptreg.services import Actor, label_move, version_publish
from tests.conftest import make_user
from tests.e2e.conftest import readme_screenshot
from tests.e2e.test_dashboard_story import sign_in

CHARTS = 7
# The README's dashboard section shows this screenshot; the suite takes it anew on every run.

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(120),
]


def experiment_with_data():
    """A draft experiment (v2 against v1 at 50%); once started, `add_data` gives it 300 sessions with a clear win."""
    cli = Actor(via=MoveVia.CLI)
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    for body in ("Hello {{ name }}", "Hi {{ name }}"):
        version_publish(name="support-system", kind="text", body=body, commit_message="c", actor=cli)
    label_move(name="support-system", label=PRODUCTION, version=1, actor=cli, reason="live")
    return experiment_create(
        actor=cli,
        prompt="support-system",
        control_version=1,
        treatment_version=2,
        min_samples_per_variant=10,
        minimum_detectable_effect=0.05,
        baseline_sd=0.15,
        guardrails=[{"metric": "latency_ms", "direction": "lower_is_better", "margin": 50}],
    )


def add_data(experiment):
    cli = Actor(via=MoveVia.CLI)
    for start in (0, 100, 200):
        items = []
        for i in range(start, start + 100):
            session = f"s{i}"
            treated = experiment.assign(session) == TREATMENT
            items.append(
                {
                    "id": session,
                    "prompt": "support-system",
                    "version": 2 if treated else 1,
                    "session_id": session,
                    "experiment": experiment.pk,
                    "metrics": {"quality_score": (0.75 if treated else 0.7) + (i % 9) / 40, "latency_ms": 400 + i % 13},
                }
            )
        scores_ingest(scores=items, actor=cli)
        experiment_snapshot(experiment.pk)


def test_experiment_page_confirms_start_and_ship_speaks_in_sentences_and_draws_its_charts(browser_page, live_server):
    experiment = experiment_with_data()
    make_user("dave", "Deployer")
    host = urlsplit(live_server.url).netloc
    requested: list[str] = []
    posted: list[str] = []
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.on("request", lambda request: requested.append(request.url))
    page.on("request", lambda request: request.method == "POST" and posted.append(urlsplit(request.url).path))
    sign_in(page, "dave")
    page.goto(f"/experiments/ab/{experiment.pk}/")
    plan = page.locator("#plan")
    expect(plan).to_contain_text("Guardrails: latency no worse than +50 ms")
    expect(plan).to_contain_text("Sample size: 142 control + 142 treatment sessions")

    # Start asks first, stating the traffic share; nothing runs until confirmed.
    page.wait_for_load_state("load")  # htmx binds its links once the deferred scripts have run
    page.get_by_role("link", name="Start…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator(".traffic-share")).to_contain_text("v2 gets 50% of sessions")
    assert Experiment.objects.get(pk=experiment.pk).state == "draft"
    dialog.get_by_role("button", name="Start: 50% to v2").click()
    expect(page.locator("#experiment-state")).to_have_text("Running")
    add_data(experiment)
    page.reload()

    # The verdict is a sentence, guardrails are in words, no decision codes anywhere.
    page.wait_for_function(f"document.querySelectorAll('.chart .main-svg').length >= {CHARTS}", timeout=30_000)
    headline = page.locator("#headline").inner_text()
    assert re.fullmatch(
        r"Ship v2: quality \+\d+\.\d% \(95% CI \+\d+\.\d% to \+\d+\.\d%\); latency no worse than \+50 ms\.", headline
    ), headline
    expect(page.locator("#guardrails")).to_contain_text("Held: latency changed by")
    main = page.locator("main").inner_text()
    assert "ship_treatment" not in main and "e-0" not in main
    readme_screenshot(page, "experiment-verdict.png")

    page.evaluate("document.querySelectorAll('.chart').forEach(function (c) { c.classList.add('old'); })")
    page.click("text=Refresh now")
    page.wait_for_function(
        f"document.querySelectorAll('.chart:not(.old) .main-svg').length >= {CHARTS}", timeout=30_000
    )

    # Ship asks first: the share it sets, the verdict, and a reason.
    page.wait_for_load_state("load")
    page.get_by_role("link", name="Ship v2…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator(".traffic-share")).to_contain_text("every session gets v2 from the next fetch (today 50% do)")
    expect(dialog.locator(".verdict")).to_contain_text(headline)
    dialog.get_by_label("Reason (required)").fill("quality up, latency held")
    dialog.get_by_role("button", name="Ship v2 to 100%").click()
    expect(page.locator("#experiment-state")).to_have_text("Concluded")
    assert Label.objects.get(prompt__name="support-system", name=PRODUCTION).version.number == 2
    assert f"/experiments/ab/{experiment.pk}/refresh/" in posted
    assert [u for u in requested if urlsplit(u).netloc != host and not u.startswith("data:")] == []
