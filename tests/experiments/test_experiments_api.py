"""Experiments as code: create / start / stop / ship / conclude through the API, routing on the fetch
path, pre-registration locks, and canaries."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from experiments.models import CONTROL, TREATMENT, AnalysisSnapshot, Experiment, ExperimentState
from experiments.services import canary_start, experiment_conclude, experiment_ship
from promptreg.exceptions import GateBlocked
from promptreg.models import PRODUCTION, Label, LabelMove, MoveVia, ReviewPolicy
from promptreg.services import label_move, rollback

NAME = "support-system"
BODY = {
    "prompt": NAME,
    "control_version": 1,
    "treatment_version": 2,
    "traffic_fraction": 0.5,
    "primary_metric": "quality_score",
    "alpha": 0.05,
    "min_samples_per_variant": 20,
    "mode": "sequential",
    "guardrails": [{"metric": "latency_ms", "direction": "lower_is_better", "margin": 50}],
}


class Api:
    def __init__(self, client, secret):
        self.client, self.auth = client, {"HTTP_AUTHORIZATION": f"Bearer {secret}"}

    def post(self, path, data=None):
        return self.client.post(f"/api/v1{path}", json.dumps(data or {}), content_type="application/json", **self.auth)

    def get(self, path, params=None):
        return self.client.get(f"/api/v1{path}", params or {}, **self.auth)


@pytest.fixture
def live(publish, cli, django_capture_on_commit_callbacks):
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    with django_capture_on_commit_callbacks(execute=True):
        publish(), publish(body="Hey {{ name }}"), publish(body="Yo {{ name }}")
        label_move(name=NAME, label=PRODUCTION, version=1, actor=cli, reason="first")


@pytest.fixture
def api(client, api_key_factory):
    return Api(client, api_key_factory("deploy", "write", name="ci")[1])


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def running(api, live, on_commit):
    created = api.post("/experiments", BODY)
    assert created.status_code == 201, created.content
    with on_commit():
        assert api.post(f"/experiments/{created.json()['id']}/start").status_code == 200
    return Experiment.objects.get(pk=created.json()["id"])


def sessions(experiment, variant, k=1):
    return [s for s in (f"sess-{i}" for i in range(10_000)) if experiment.assign(s) == variant][:k]


def post_winning_scores(api, experiment, per_variant=40):
    """Scores that make the treatment a clear win with the latency guardrail held: `ship_treatment`."""
    scores = []
    for variant, version, quality in ((CONTROL, 1, 0.5), (TREATMENT, 2, 0.8)):
        for i, s in enumerate(sessions(experiment, variant, per_variant)):
            metrics = {"quality_score": quality + (i % 7) / 50, "latency_ms": 400 + i % 11}
            scores.append(
                {
                    "id": s,
                    "prompt": NAME,
                    "version": version,
                    "session_id": s,
                    "experiment": experiment.pk,
                    "metrics": metrics,
                }
            )
    assert api.post("/scores", {"scores": scores}).status_code == 200
    assert api.get(f"/experiments/{experiment.pk}").json()["analysis"]["decision"] == "ship_treatment"


def test_create_returns_201_with_the_id_and_a_draft(api, live):
    r = api.post("/experiments", {**BODY, "minimum_detectable_effect": 0.05, "baseline_sd": 0.2})
    assert r.status_code == 201, r.content
    experiment = Experiment.objects.get(pk=r.json()["id"])
    assert (experiment.state, experiment.control_version.number, experiment.treatment_version.number) == ("draft", 1, 2)
    assert experiment.guardrails == [{"metric": "latency_ms", "direction": "lower_is_better", "margin": 50.0}]
    assert r.json()["required_n_per_variant"] == 252  # 2·(1.96+0.84)²·0.2²/0.05²
    assert experiment.history.count() == 1


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"prompt": "nope"}, 404),
        ({"treatment_version": 9}, 404),
        ({"treatment_version": 1}, 400),
        ({"traffic_fraction": 1.5}, 400),
        ({"alpha": 0.7}, 400),
        ({"primary_metric": "bad metric"}, 400),
        ({"guardrails": [{"metric": "quality_score", "margin": 1}]}, 400),
        ({"guardrails": [{"metric": "latency_ms", "margin": -1}]}, 400),
        ({"mode": "bayesian"}, 400),
    ],
)
def test_invalid_experiments_are_rejected_and_nothing_is_created(api, live, change, status):
    r = api.post("/experiments", {**BODY, **change})
    assert r.status_code == status, r.content
    assert "error" in r.json()
    assert not Experiment.objects.exists()


def test_scopes_are_enforced(client, api_key_factory, live):
    writer = Api(client, api_key_factory("write", name="w")[1])
    assert writer.post("/experiments", BODY).status_code == 403
    assert not Experiment.objects.exists()


def test_fetch_with_session_returns_the_assigned_version(api, running, api_key_factory, client):
    reader = Api(client, api_key_factory("read", name="r")[1])
    for variant, version in ((CONTROL, 1), (TREATMENT, 2)):
        for session in sessions(running, variant, 3):
            body = reader.get(f"/prompts/{NAME}", {"session_id": session}).json()
            assert (body["version"], body["experiment"]) == (version, {"id": running.pk, "variant": variant})
    plain = reader.get(f"/prompts/{NAME}").json()
    assert (plain["version"], plain["experiment"]) == (1, None)
    # pinned versions are not routed
    assert reader.get(f"/prompts/{NAME}", {"version": 3, "session_id": "x"}).json()["experiment"] is None


def test_stop_is_a_kill_switch(api, running, on_commit):
    treated = sessions(running, TREATMENT)[0]
    assert api.get(f"/prompts/{NAME}", {"session_id": treated}).json()["version"] == 2
    with on_commit():
        r = api.post(f"/experiments/{running.pk}/stop", {"reason": "users complain"})
    assert r.status_code == 200 and r.json()["state"] == "stopped"
    body = api.get(f"/prompts/{NAME}", {"session_id": treated}).json()
    assert (body["version"], body["experiment"]) == (1, None)
    running.refresh_from_db()
    assert running.end_reason == "users complain" and running.ended_at is not None
    assert AnalysisSnapshot.objects.filter(experiment=running).exists()


def test_get_returns_config_state_and_analysis(api, running):
    control, treated = sessions(running, CONTROL, 30), sessions(running, TREATMENT, 30)
    scores = [
        {
            "id": f"{s}-q",
            "prompt": NAME,
            "version": v,
            "session_id": s,
            "experiment": running.pk,
            "metrics": {"quality_score": 0.5 + (0.3 if v == 2 else 0) + (i % 5) / 100, "latency_ms": 400 + i % 7},
        }
        for v, group in ((1, control), (2, treated))
        for i, s in enumerate(group)
    ]
    assert api.post("/scores", {"scores": scores}).status_code == 200
    body = api.get(f"/experiments/{running.pk}").json()
    assert body["state"] == "running" and body["primary_metric"] == "quality_score"
    analysis = body["analysis"]
    assert analysis["decision"] == "ship_treatment", analysis["explanation"]
    assert analysis["primary"]["control"]["n"] == 30 and analysis["primary"]["treatment"]["n"] == 30
    assert analysis["primary"]["absolute_lift"] == pytest.approx(0.3)
    lo, hi = analysis["primary"]["absolute_ci"]
    assert lo < 0.3 < hi
    assert set(analysis["srm"]) >= {"p_value", "ok"} and analysis["srm"]["ok"]
    assert analysis["guardrails"][0]["metric"] == "latency_ms" and analysis["guardrails"][0]["non_inferior"]
    assert set(analysis["primary"]) >= {
        "metric",
        "control",
        "treatment",
        "absolute_lift",
        "absolute_ci",
        "relative_lift",
        "relative_ci",
        "p_value",
    }


def test_one_running_experiment_per_prompt_and_label(api, running):
    second = api.post("/experiments", {**BODY, "treatment_version": 3}).json()["id"]
    r = api.post(f"/experiments/{second}/start")
    assert r.status_code == 409 and r.json()["error"]["code"] == "experiment_running"
    assert Experiment.objects.get(pk=second).state == "draft"


def test_start_needs_the_control_to_be_live(api, live):
    created = api.post("/experiments", {**BODY, "control_version": 2, "treatment_version": 3}).json()["id"]
    r = api.post(f"/experiments/{created}/start")
    assert r.status_code == 400 and r.json()["error"]["code"] == "control_not_live"
    assert Experiment.objects.get(pk=created).state == "draft"


def test_metrics_are_locked_once_started(running):
    running.primary_metric = "latency_ms"
    with pytest.raises(ValidationError):
        running.save()
    running.refresh_from_db()
    running.guardrails = []
    with pytest.raises(ValidationError):
        running.save()
    assert Experiment.objects.get(pk=running.pk).guardrails[0]["metric"] == "latency_ms"


def test_ship_moves_the_label_through_the_gates_and_is_recorded(api, running, on_commit):
    post_winning_scores(api, running)
    ReviewPolicy.objects.update(requires_review=True)
    r = api.post(f"/experiments/{running.pk}/ship", {"reason": "better answers"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "gate_blocked"
    assert Label.objects.get(name=PRODUCTION).version.number == 1
    assert Experiment.objects.get(pk=running.pk).state == "running"
    ReviewPolicy.objects.update(requires_review=False)
    with on_commit():
        r = api.post(f"/experiments/{running.pk}/ship", {"reason": "better answers"})
    assert r.status_code == 200 and r.json()["state"] == "concluded" and r.json()["shipped"]
    move = LabelMove.objects.latest("id")
    assert (move.to_version.number, move.via, move.api_key.name) == (2, MoveVia.EXPERIMENT, "ci")
    assert "better answers" in move.reason
    body = api.get(f"/prompts/{NAME}", {"session_id": sessions(running, CONTROL)[0]}).json()
    assert (body["version"], body["experiment"]) == (2, None)


def test_ship_is_refused_on_sample_ratio_mismatch(api, running):
    control = sessions(running, CONTROL, 300)
    scores = [
        {
            "id": s,
            "prompt": NAME,
            "version": 1,
            "session_id": s,
            "experiment": running.pk,
            "metrics": {"quality_score": 0.5},
        }
        for s in control
    ]
    scores += [
        {
            "id": s,
            "prompt": NAME,
            "version": 2,
            "session_id": s,
            "experiment": running.pk,
            "metrics": {"quality_score": 0.5},
        }
        for s in sessions(running, TREATMENT, 150)
    ]
    assert api.post("/scores", {"scores": scores}).status_code == 200
    assert api.get(f"/experiments/{running.pk}").json()["analysis"]["decision"] == "invalid_srm"
    r = api.post(f"/experiments/{running.pk}/ship", {"reason": "looks fine"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_srm"
    assert Label.objects.get(name=PRODUCTION).version.number == 1


def test_a_label_moved_under_a_running_experiment_stops_it(running, cli, on_commit):
    with on_commit():
        label_move(name=NAME, label=PRODUCTION, version=3, actor=cli, reason="hotfix")
    running.refresh_from_db()
    assert running.state == "stopped" and "label was moved" in running.end_reason


def test_canary_promote_and_roll_back(api, live, cli, on_commit):
    with on_commit():
        canary = canary_start(actor=cli, prompt=NAME, version=2)
    assert (canary.kind, canary.traffic_fraction, canary.state, canary.control_version.number) == (
        "canary",
        0.05,
        "running",
        1,
    )
    treated = sessions(canary, TREATMENT, 50)
    share = sum(canary.assign(f"u{i}") == TREATMENT for i in range(20_000)) / 20_000
    assert 0.04 < share < 0.06
    assert api.get(f"/prompts/{NAME}", {"session_id": treated[0]}).json()["version"] == 2
    with on_commit():
        experiment_conclude(experiment_id=canary.pk, actor=cli, reason="error rate up")
    assert api.get(f"/prompts/{NAME}", {"session_id": treated[0]}).json()["version"] == 1
    assert Label.objects.get(name=PRODUCTION).version.number == 1

    with on_commit():
        second = canary_start(actor=cli, prompt=NAME, version=2, traffic_fraction=0.1)
        experiment_ship(experiment_id=second.pk, actor=cli, reason="promoted before its verdict", override=True)
    assert Label.objects.get(name=PRODUCTION).version.number == 2
    assert Experiment.objects.get(pk=second.pk).state == ExperimentState.CONCLUDED
    # the promotion is an ordinary move: rollback goes back to v1
    with on_commit():
        rollback(name=NAME, actor=cli, reason="oops")
    assert Label.objects.get(name=PRODUCTION).version.number == 1


def test_a_gated_canary_start_is_all_or_nothing_for_services(live, cli, on_commit):
    ReviewPolicy.objects.update(requires_review=True)
    with pytest.raises(GateBlocked):
        canary_start(actor=cli, prompt=NAME, version=2)
    assert not Experiment.objects.exists()  # the draft canary_start created went with the refusal


def test_beat_task_snapshots_running_experiments_once_per_change(api, running, settings):
    from experiments.tasks import experiments_snapshot_running
    from promptreg.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["experiments-analyse-running"]
    assert entry["task"] in app.tasks
    assert experiments_snapshot_running() == 1
    assert experiments_snapshot_running() == 1
    assert AnalysisSnapshot.objects.filter(experiment=running).count() == 1  # nothing new, nothing stored
    s = sessions(running, CONTROL)[0]
    api.post(
        "/scores",
        {
            "scores": [
                {
                    "id": "a",
                    "prompt": NAME,
                    "version": 1,
                    "session_id": s,
                    "experiment": running.pk,
                    "metrics": {"quality_score": 1},
                }
            ]
        },
    )
    experiments_snapshot_running()
    snapshots = list(AnalysisSnapshot.objects.filter(experiment=running))
    assert len(snapshots) == 2 and snapshots[-1].result["primary"]["control"]["n"] == 1
