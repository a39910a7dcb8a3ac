"""Dashboard pages: create with the required sample size, the analysis page and its charts, the actions."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from experiments import charts
from experiments.analysis import experiment_history, experiment_snapshot
from experiments.creation import experiment_create
from experiments.models import CONTROL, TREATMENT, AnalysisSnapshot, Experiment
from experiments.scores import scores_ingest
from promptreg.models import PRODUCTION, Label, ReviewPolicy
from promptreg.services import label_move

NAME = "support-system"


@pytest.fixture
def live(publish, cli):
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    publish(), publish(body="Hey {{ name }}")
    label_move(name=NAME, label=PRODUCTION, version=1, actor=cli, reason="first")


@pytest.fixture
def draft(live, cli):
    return experiment_create(
        actor=cli,
        prompt=NAME,
        control_version=1,
        treatment_version=2,
        min_samples_per_variant=5,
        guardrails=[{"metric": "latency_ms", "direction": "lower_is_better", "margin": 50}],
        minimum_detectable_effect=0.1,
        baseline_sd=0.2,
    )


def as_user(client, user):
    client.force_login(user)
    return client


def with_scores(experiment, cli, sessions=40):
    items = []
    for i in range(sessions):
        s = f"sess-{i}"
        variant = experiment.assign(s)
        items.append(
            {
                "id": s,
                "prompt": NAME,
                "version": 2 if variant == TREATMENT else 1,
                "session_id": s,
                "experiment": experiment.pk,
                "metrics": {
                    "quality_score": (0.8 if variant == TREATMENT else 0.5) + (i % 7) / 50,
                    "latency_ms": 400 + i % 11,
                },
            }
        )
    scores_ingest(scores=items, actor=cli)


def test_list_shows_experiments_and_the_nav_link(client, draft, outsider):
    page = as_user(client, outsider).get("/experiments/ab/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"#{draft.pk}" in html and 'href="/experiments/ab/"' in html
    assert "New experiment" not in html  # no deploy role, no button


def test_create_in_the_browser(client, live, deployer):
    form = {
        "prompt": NAME,
        "kind": "experiment",
        "label": "production",
        "control_version": "",
        "treatment_version": "2",
        "traffic_fraction": "0.5",
        "primary_metric": "quality_score",
        "primary_direction": "higher_is_better",
        "primary_kind": "mean",
        "guardrails": "latency_ms lower_is_better 50",
        "minimum_detectable_effect": "0.05",
        "baseline_sd": "0.2",
        "alpha": "0.05",
        "power": "0.8",
        "min_samples_per_variant": "100",
        "min_runtime_hours": "168",
        "mode": "sequential",
        "hypothesis": "Shorter answers read better",
    }
    response = as_user(client, deployer).post("/experiments/ab/new/", form)
    experiment = Experiment.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/experiments/ab/{experiment.pk}/"
    assert (experiment.control_version.number, experiment.state, experiment.min_runtime.days) == (1, "draft", 7)
    assert experiment.guardrails == [{"metric": "latency_ms", "direction": "lower_is_better", "margin": 50.0}]


def test_create_form_errors_change_nothing(client, live, deployer):
    response = as_user(client, deployer).post(
        "/experiments/ab/new/",
        {
            "prompt": NAME,
            "treatment_version": "1",
            "kind": "experiment",
            "label": "production",
            "traffic_fraction": "0.5",
            "primary_metric": "quality_score",
            "primary_direction": "higher_is_better",
            "primary_kind": "mean",
            "alpha": "0.05",
            "power": "0.8",
            "min_samples_per_variant": "100",
            "min_runtime_hours": "0",
            "mode": "fixed",
            "guardrails": "latency_ms lower_is_better",
        },
    )
    assert response.status_code == 200 and "metric direction margin" in response.content.decode()
    assert not Experiment.objects.exists()


def test_the_form_shows_the_required_sample_size(client, live, deployer):
    page = as_user(client, deployer).get(
        "/experiments/ab/sample-size/",
        {"minimum_detectable_effect": "0.05", "baseline_sd": "0.2", "traffic_fraction": "0.5"},
    )
    assert page.status_code == 200
    assert "252 control + 252 treatment sessions" in page.content.decode()
    empty = client.get("/experiments/ab/sample-size/", {"prompt": NAME, "minimum_detectable_effect": "0.05"})
    assert "not enough recent scores" in empty.content.decode()


def test_only_deployers_act(client, draft, author):
    as_user(client, author)
    assert client.get("/experiments/ab/new/").status_code == 403
    for action in ("start", "stop", "ship", "conclude"):
        assert client.post(f"/experiments/ab/{draft.pk}/{action}/", {"reason": "x"}).status_code == 403
    assert Experiment.objects.get(pk=draft.pk).state == "draft"
    assert client.post(f"/experiments/ab/{draft.pk}/explode/").status_code == 404


def test_start_stop_and_ship_from_the_page(client, draft, deployer, cli, django_capture_on_commit_callbacks):
    as_user(client, deployer)
    page = client.get(f"/experiments/ab/{draft.pk}/").content.decode()
    assert "Start" in page and "Stop (kill switch)" not in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/experiments/ab/{draft.pk}/start/")
    assert Experiment.objects.get(pk=draft.pk).state == "running"
    assert "Stop (kill switch)" in client.get(f"/experiments/ab/{draft.pk}/").content.decode()
    refused = client.post(f"/experiments/ab/{draft.pk}/ship/", {"reason": ""}, follow=True)
    assert "Say why" in refused.content.decode() and Label.objects.get(name=PRODUCTION).version.number == 1
    blocked = client.post(f"/experiments/ab/{draft.pk}/ship/", {"reason": "clear win"}, follow=True)
    assert "insufficient_data" in blocked.content.decode() and Label.objects.get(name=PRODUCTION).version.number == 1
    with_scores(draft, cli, sessions=60)
    client.post(f"/experiments/ab/{draft.pk}/ship/", {"reason": "clear win"})
    assert Label.objects.get(name=PRODUCTION).version.number == 2
    assert Experiment.objects.get(pk=draft.pk).state == "concluded"
    assert (
        "Concluded"
        in client.get(f"/experiments/ab/{draft.pk}/").content.decode().split('id="end-reason"')[1].split("</p>")[0]
    )
    assert "shipped: clear win" in client.get(f"/experiments/ab/{draft.pk}/").content.decode()


def test_analysis_page_draws_every_chart_from_local_plotly(client, draft, deployer, cli):
    as_user(client, deployer)
    client.post(f"/experiments/ab/{draft.pk}/start/")
    with_scores(draft, cli)
    assert client.post(f"/experiments/ab/{draft.pk}/refresh/").status_code == 302
    with_scores(draft, cli, sessions=80)
    client.post(f"/experiments/ab/{draft.pk}/refresh/")
    assert AnalysisSnapshot.objects.filter(experiment=draft).count() == 2
    html = client.get(f"/experiments/ab/{draft.pk}/").content.decode()
    assert "/static/vendor/plotly/plotly.min.js" in html and "/static/js/charts.js" in html
    assert "cdn" not in html.lower()
    for name in (
        "means-over-time",
        "samples-over-time",
        "lift-over-time",
        "lift-now",
        "decisions-over-time",
        "distributions",
    ):
        assert f'data-plotly="fig-{name}"' in html and f'id="fig-{name}"' in html
    assert 'id="guardrails"' in html and "latency_ms" in html
    partial = client.get(f"/experiments/ab/{draft.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<div id="analysis"') and "<html" not in partial


def test_charts_carry_the_numbers_and_read_with_a_single_snapshot(draft, cli, deployer, client):
    as_user(client, deployer).post(f"/experiments/ab/{draft.pk}/start/")
    with_scores(draft, cli, sessions=60)
    experiment_snapshot(draft.pk)
    history = experiment_history(draft)
    result = history[-1]["result"]
    means = charts.means_over_time(history, "quality_score")
    control_line = next(t for t in means["data"] if t.get("name") == "Control")
    assert control_line["y"] == [pytest.approx(result["primary"][CONTROL]["mean"])]
    # One snapshot: a marker with its interval as an error bar (a band needs two points), on a two-hour axis.
    assert control_line["mode"] == "lines+markers" and control_line["error_y"]["array"][0] > 0
    start, end = (datetime.fromisoformat(x) for x in means["layout"]["xaxis"]["range"])
    assert end - start == timedelta(hours=2)
    samples = charts.samples_over_time(history, result["required_n"])
    required = result["required_n"]["treatment"]
    assert result["required_n"]["control"] == required  # a 50/50 split: one dashed line for both
    assert [s["y0"] for s in samples["layout"]["shapes"]] == [required]
    assert samples["layout"]["annotations"][0]["text"] == f"each variant needs {required}"
    assert samples["layout"]["xaxis"]["range"]
    lift = charts.lift_over_time(history, sequential=True, metric="quality_score")
    line = next(t for t in lift["data"] if t.get("name") == "Treatment − control")
    assert line["y"] == [pytest.approx(result["primary"]["absolute_lift"])]
    lo, hi = result["primary"]["absolute_ci"]
    assert line["error_y"]["arrayminus"] == [pytest.approx(result["primary"]["absolute_lift"] - lo)]
    assert line["error_y"]["array"] == [pytest.approx(hi - result["primary"]["absolute_lift"])]
    assert "always-valid interval" in lift["layout"]["title"]["text"]
    json.dumps(charts.lift_now(result))  # JSON-able as json_script needs


def test_every_axis_has_one_unit(draft, cli, deployer, client):
    """The primary's change is in % on its own chart; each guardrail gets its own axis in its own unit."""
    as_user(client, deployer).post(f"/experiments/ab/{draft.pk}/start/")
    with_scores(draft, cli, sessions=60)
    result = experiment_snapshot(draft.pk).result
    now = charts.lift_now(result)
    assert [t["y"] for t in now["data"]] == [["quality"]]
    assert now["layout"]["xaxis"]["title"]["text"] == "change in quality (%)"
    assert now["data"][0]["x"] == [pytest.approx(result["primary"]["relative_lift"] * 100)]
    guard = charts.guardrails_now(result)
    assert [t["xaxis"] for t in guard["data"]] == ["x"] and guard["layout"]["xaxis"]["title"][
        "text"
    ] == "change in latency (ms)"
    assert [s["x0"] for s in guard["layout"]["shapes"]] == [50]  # the margin allowed, in ms
    two = {
        **result,
        "guardrails": [*result["guardrails"], {**result["guardrails"][0], "metric": "cost_usd", "margin": 0.001}],
    }
    guard = charts.guardrails_now(two)
    assert [t["xaxis"] for t in guard["data"]] == ["x", "x2"]
    assert guard["layout"]["xaxis2"]["title"]["text"] == "change in cost (USD)"


def test_start_and_ship_ask_first_stating_the_traffic_share_and_the_breaking_change(client, draft, deployer, cli):
    as_user(client, deployer)
    page = client.get(f"/experiments/ab/{draft.pk}/").content.decode()
    assert f'hx-get="/experiments/ab/{draft.pk}/start/"' in page
    dialog = client.get(f"/experiments/ab/{draft.pk}/start/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in dialog and "v2 gets 50% of sessions" in dialog and "keeps the other 50%" in dialog
    assert "Start: 50% to v2</button>" in dialog and "Breaking change" not in dialog
    assert Experiment.objects.get(pk=draft.pk).state == "draft"  # asking changes nothing
    client.post(f"/experiments/ab/{draft.pk}/start/")
    with_scores(draft, cli, sessions=60)
    dialog = client.get(f"/experiments/ab/{draft.pk}/ship/").content.decode()
    assert "every session gets v2" in dialog and "today 50% do" in dialog and "Ship v2 to 100%</button>" in dialog
    assert "Verdict:</strong> " in dialog and Label.objects.get(name=PRODUCTION).version.number == 1
    assert client.get(f"/experiments/ab/{draft.pk}/stop/").status_code == 405


def test_a_breaking_treatment_is_named_in_the_confirmation(client, live, deployer, publish, cli):
    publish(body="Hey {{ name }}, your order {{ order_id }}")
    experiment = experiment_create(actor=cli, prompt=NAME, control_version=1, treatment_version=3, traffic_fraction=0.1)
    dialog = as_user(client, deployer).get(f"/experiments/ab/{experiment.pk}/start/").content.decode()
    assert (
        "Breaking change:" in dialog and "before 10% of sessions get v3" in dialog and "<code>order_id</code>" in dialog
    )


def test_the_confirmations_say_when_gates_or_the_verdict_hold_the_action_back(client, draft, deployer, admin_user):
    ReviewPolicy.objects.update(requires_review=True)
    dialog = as_user(client, deployer).get(f"/experiments/ab/{draft.pk}/start/").content.decode()
    assert "v2 has not passed the gates of production" in dialog and "An admin can override them." in dialog
    assert "disabled>Start: 50% to v2</button>" in dialog
    dialog = as_user(client, admin_user).get(f"/experiments/ab/{draft.pk}/start/").content.decode()
    assert 'name="override" required' in dialog and "the override and its reason are recorded" in dialog
    client.post(f"/experiments/ab/{draft.pk}/start/", {"override": "on", "reason": "hotfix, review follows"})
    assert Experiment.objects.get(pk=draft.pk).state == "running"
    dialog = as_user(client, deployer).get(f"/experiments/ab/{draft.pk}/ship/").content.decode()
    assert "The verdict does not allow shipping yet." in dialog and "Too early to call" in dialog
