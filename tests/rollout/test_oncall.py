"""The on-call page: what it shows, the one-click rollback, the banner and its Acknowledge button, the monitor form."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from promptreg.models import LabelMove, MoveVia
from promptreg.services import label_move
from rollout.models import Monitor, PendingInvalidation, RollbackIncident
from rollout.monitoring import run_check
from rollout.oncall import PAGE_SIZE
from rollout.services import monitor_configure
from tests.conftest import PASSWORD
from tests.rollout.monitor_story import (
    CLI,
    activate,
    add_scores,
    canary,
    canary_story,
    chart_markers,
    live,
    marker_texts,
    monitor,
    noisy,
    publish,
    story,
)

ONCALL = "/oncall/"


@pytest.fixture
def rolled_back(db, ungated):
    """v1 → v2 (bad) → automatic rollback to v1."""
    v1, v2 = story()
    m = monitor(consecutive_failures=1)
    t0 = LabelMove.objects.filter(to_version=v2).latest("id").created_at
    add_scores(v2, noisy(0.4, 40, seed=9), end=t0 + timedelta(seconds=40))
    run_check(m.id, now=t0 + timedelta(seconds=41))
    assert live() == 1
    return v1, v2


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_oncall_page_shows_versions_monitor_chart_and_timeline(client, deployer, rolled_back):
    r = login(client, deployer).get(ONCALL)
    assert r.status_code == 200
    html = r.content.decode()
    assert "support-system" in html and "production v1" in html
    assert "Rolled back" in html  # monitor state
    assert '0.398 <span class="muted">(n=40)</span>' in html  # v2's mean quality in the per-version table
    assert "Automatic rollback" in html and "ship v2" in html  # timeline: how and why
    figure = r.context["rows"][0]["figure"]
    json.dumps(figure)  # plain JSON for json_script
    names = [t["name"] for t in figure["data"]]
    assert "v1" in names and "v2" in names
    means = {n.split()[0]: float(n.split()[-1]) for n in names if " mean " in n}
    assert means["v2"] == pytest.approx(0.4, abs=0.03) and means["v1"] == pytest.approx(0.8, abs=0.03)
    markers = marker_texts(figure)
    assert "auto-rollback v1" in markers and "activated v2" in markers
    # Seconds apart: the newest is written at the top, the next at the bottom, the oldest counted there; none overlap.
    written = [(a["text"], a["y"]) for a in figure["layout"]["annotations"]]
    assert written == [("auto-rollback v1", 1), ("activated v2 +1 more", 0)]
    assert 'src="/static/vendor/plotly/plotly.min.js"' in html
    assert f'id="chart-{rolled_back[0].prompt_id}-data"' in html  # json_script
    dialog = reverse("promptreg:prompt-rollback", args=["support-system"])
    assert f'href="{dialog}?seen=1&amp;next=/oncall/"' in html and "Roll back from v1…" in html


def test_rollback_button_is_hidden_and_refused_without_the_deployer_role(client, author, rolled_back):
    login(client, author)
    assert "Roll back from" not in client.get(ONCALL).content.decode()
    r = client.post(
        reverse("promptreg:prompt-rollback", args=["support-system"]),
        {"reason": "x", "expected_current": 1, "next": ONCALL},
    )
    assert r.status_code == 403
    assert live() == 1 and LabelMove.objects.filter(is_rollback=True).count() == 1


def test_oncall_rollback_opens_the_prompt_pages_dialog_names_the_target_and_returns_to_oncall(
    client, deployer, db, ungated
):
    v1, v2 = story()
    login(client, deployer)
    url = reverse("promptreg:prompt-rollback", args=["support-system"])
    dialog = client.get(url, {"seen": 2, "next": ONCALL}, HTTP_HX_REQUEST="true").content.decode()
    assert (
        "<html" not in dialog
        and "Production goes from <strong>v2</strong> back to <strong>v1</strong> (live " in dialog
    )
    assert "Roll back to v1</button>" in dialog and 'name="next" value="/oncall/"' in dialog
    assert "changed since your page was loaded" not in dialog
    assert (
        "changed since your page was loaded: it now serves v2"
        in client.get(url, {"seen": 1, "next": ONCALL}).content.decode()
    )
    refused = client.post(url, {"reason": "", "expected_current": 2, "next": ONCALL})
    assert refused.status_code == 200 and "This field is required" in refused.content.decode() and live() == 2
    stale = client.post(url, {"reason": "bad answers", "expected_current": 1, "next": ONCALL})
    assert "already moved" in stale.content.decode() and live() == 2
    r = client.post(url, {"reason": "bad answers", "expected_current": 2, "next": ONCALL})
    assert r.status_code == 302 and r.url == ONCALL
    assert "went from v2 back to v1" in client.get(ONCALL).content.decode()
    move = LabelMove.objects.get(is_rollback=True)
    assert (move.via, move.actor, move.reason, live()) == (MoveVia.BUTTON, deployer, "bad answers", 1)
    # Only our own pages: a foreign `next` falls back to the prompt page.
    activate(2)
    r = client.post(url, {"reason": "again", "expected_current": 2, "next": "https://evil.example/"})
    assert r.status_code == 302 and r.url == reverse("promptreg:prompt-detail", args=["support-system"])


def test_banner_on_every_page_until_acknowledged(client, deployer, outsider, rolled_back):
    login(client, outsider)
    page = client.get(reverse("rollout:oncall")).content.decode()
    assert "production rolled back automatically from v2 to v1" in page
    assert "Acknowledge" not in page  # outsiders see it but may not acknowledge
    incident = RollbackIncident.objects.get()
    assert client.post(reverse("rollout:incident-acknowledge", args=[incident.id])).status_code == 403
    client.logout()

    login(client, deployer)
    other_page = client.get(reverse("rollout:monitor-edit", args=["support-system"])).content.decode()
    assert 'id="rollback-banner"' in other_page and "Acknowledge" in other_page
    r = client.post(reverse("rollout:incident-acknowledge", args=[incident.id]), {"next": "http://evil.example/"})
    assert r.status_code == 302 and r.url == reverse("rollout:oncall")
    incident.refresh_from_db()
    assert incident.acknowledged_by == deployer and incident.acknowledged_at is not None
    assert (
        'id="rollback-banner"'
        not in client.get(reverse("rollout:monitor-edit", args=["support-system"])).content.decode()
    )


def test_monitor_form_shows_errors_and_saves_nothing_then_saves(client, deployer, db, ungated):
    story()
    login(client, deployer)
    url = reverse("rollout:monitor-edit", args=["support-system"])
    form = {
        "metric": "quality_score",
        "interval_seconds": 60,
        "consecutive_failures": 2,
        "inconclusive_before_page": 10,
        "cooldown_minutes": 30,
        "floor_enabled": "on",
        "floor_threshold": 1.5,
        "floor_window_minutes": -3,
        "floor_min_samples": 20,
        "relative_enabled": "on",
        "relative_margin": 0.03,
        "relative_alpha": 0.01,
        "relative_window_minutes": 15,
        "relative_min_samples": 30,
        "enabled": "on",
    }
    r = client.post(url, form)
    assert r.status_code == 200
    errors = r.context["form"].errors
    assert "floor_threshold" in errors and "floor_window_minutes" in errors
    assert not Monitor.objects.exists()
    r = client.post(url, {**form, "metric": "vibes", "floor_threshold": 0.6, "floor_window_minutes": 15})
    assert "metric" in r.context["form"].errors and not Monitor.objects.exists()
    r = client.post(url, {**form, "floor_threshold": 0.6, "floor_window_minutes": 15})
    assert r.status_code == 302
    m = Monitor.objects.get()
    assert (m.floor_threshold, m.floor_window_minutes, m.relative_enabled) == (0.6, 15, True)


def test_monitor_form_needs_the_deployer_role(client, author, db, ungated):
    story()
    login(client, author)
    url = reverse("rollout:monitor-edit", args=["support-system"])
    assert client.get(url).status_code == 403
    assert client.post(url, {"metric": "quality_score"}).status_code == 403
    assert not Monitor.objects.exists()


def test_oncall_needs_login(client, db):
    r = client.get(ONCALL)
    assert r.status_code == 302 and "/accounts/login/" in r.url


def test_htmx_refresh_returns_only_the_production_panel(client, deployer, rolled_back):
    r = login(client, deployer).get(ONCALL, HTTP_HX_REQUEST="true")
    html = r.content.decode()
    assert r.status_code == 200 and html.lstrip().startswith('<div id="production"')
    assert "production v1" in html and "Deployment timeline" not in html and "<html" not in html


def test_a_prompt_without_scores_gets_a_hint_instead_of_an_empty_chart(client, deployer, db, ungated, publish, cli):
    publish()
    label_move(name="support-system", label="production", version=1, actor=cli, reason="first")
    html = login(client, deployer).get(ONCALL).content.decode()
    assert "No scores yet." in html
    assert "chart appears once app servers post scores" in html
    assert 'class="chart"' not in html


def test_oncall_page_shows_a_running_canary_and_its_monitor(client, deployer, ungated):
    v1, v2, _, experiment = canary_story()
    run_check(Monitor.objects.get(experiment=experiment).id)
    html = login(client, deployer).get(ONCALL).content.decode()
    assert f'id="canary-{experiment.pk}"' in html
    assert f"Canary #{experiment.pk}</a>: v2 gets 5% of sessions" in html
    assert "Canary monitor: <span" in html and "canary v2 inconclusive" in html
    assert "Roll back canary v2" in html
    monitor_configure(name="support-system", actor=CLI, changes={"enabled": False})
    assert 'Canary monitor: <span class="state state-disabled">Disabled</span>' in client.get(ONCALL).content.decode()
    markers = chart_markers(experiment.prompt)
    assert "canary v2 5%" in markers
    client.post(f"/experiments/ab/{experiment.pk}/conclude/", {"reason": "paged for it, looks wrong"})
    experiment.refresh_from_db()
    assert (experiment.state, experiment.end_reason, live()) == ("concluded", "paged for it, looks wrong", 1)
    assert f'id="canary-{experiment.pk}"' not in client.get(ONCALL).content.decode()
    markers = chart_markers(experiment.prompt)
    assert "canary v2 5%" in markers and "canary v2 rolled back" in markers


def test_oncall_page_offers_no_canary_rollback_without_the_deployer_role(client, author, ungated):
    v1, v2, _, experiment = canary_story()
    html = login(client, author).get(ONCALL).content.decode()
    assert f'id="canary-{experiment.pk}"' in html and "Roll back canary" not in html
    assert client.post(f"/experiments/ab/{experiment.pk}/conclude/", {"reason": "x"}).status_code == 403
    experiment.refresh_from_db()
    assert experiment.state == "running"


def test_oncall_page_warns_while_a_cache_invalidation_has_not_reached_redis(client, deployer, rolled_back):
    assert 'id="pending-invalidations"' not in login(client, deployer).get(ONCALL).content.decode()
    PendingInvalidation.objects.create(prompt_name="support-system")
    html = client.get(ONCALL).content.decode()
    assert 'id="pending-invalidations"' in html and "support-system · since" in html


def test_oncall_page_costs_the_same_queries_for_one_prompt_or_many(client, deployer, ungated):
    def prompt_with_everything(name: str) -> None:
        v1, v2 = publish(2, name=name)
        activate(1, name=name)
        add_scores(v1, noisy(0.8, 30, seed=1), spacing=60)
        monitor_configure(name=name, actor=CLI, changes={"floor_threshold": 0.6})
        canary(2, name=name)
        for m in Monitor.objects.filter(prompt__name=name):
            run_check(m.id)

    login(client, deployer)
    prompt_with_everything("support-system")
    with CaptureQueriesContext(connection) as one:
        assert client.get(ONCALL).status_code == 200
    for i in range(4):
        prompt_with_everything(f"billing-{i}-system")
    with CaptureQueriesContext(connection) as five:
        html = client.get(ONCALL).content.decode()
    assert len(five) == len(one), [q["sql"][:120] for q in five.captured_queries]
    assert html.count('class="card oncall-prompt"') == 5 and html.count("Canary monitor: <span") == 5
    assert html.count('data-plotly="chart-') == 5


def test_oncall_page_shows_prompts_that_need_attention_first_then_canaries(client, deployer, ungated):
    for name in ("alpha-system", "beta-system", "gamma-system", "delta-system"):
        publish(2, name=name)
        activate(1, name=name)
    failing = monitor_configure(name="gamma-system", actor=CLI, changes={"floor_threshold": 0.6})
    Monitor.objects.filter(pk=failing.pk).update(state="failing")
    canary(2, name="delta-system")
    html = login(client, deployer).get(ONCALL).content.decode()
    order = [name for name in ("alpha-system", "beta-system", "gamma-system", "delta-system") if f"<h2>{name} " in html]
    assert sorted(order, key=html.index) == ["gamma-system", "delta-system", "alpha-system", "beta-system"]
    assert html.count("oncall-prompt attention") == 1


def test_oncall_page_pages_its_prompts_and_the_refresh_keeps_the_page(client, deployer, ungated):
    for i in range(PAGE_SIZE + 2):
        publish(1, name=f"p{i:02d}-system")
        activate(1, name=f"p{i:02d}-system")
    first = login(client, deployer).get(ONCALL).content.decode()
    assert first.count('class="card oncall-prompt') == PAGE_SIZE and "Page 1 of 2" in first
    second = client.get(ONCALL, {"page": 2})
    assert second.content.decode().count('class="card oncall-prompt') == 2
    assert 'hx-get="/oncall/?page=2"' in second.content.decode()
    refresh = client.get(ONCALL, {"page": 2}, HTTP_HX_REQUEST="true").content.decode()
    assert refresh.count('class="card oncall-prompt') == 2 and "<html" not in refresh
