"""POST /api/v1/scores: validation with the offending index, all-or-nothing, idempotency, running sums."""

from __future__ import annotations

import json

import pytest

from experiments.models import (
    CONTROL,
    TREATMENT,
    Experiment,
    ExperimentSession,
    ExperimentState,
    ExperimentTotal,
    Score,
)
from experiments.scores import experiment_totals_rebuild, scores_ingest
from promptreg.exceptions import Forbidden
from promptreg.models import ApiKey, MoveVia
from promptreg.services import Actor

URL = "/api/v1/scores"


@pytest.fixture
def versions(publish):
    return publish(), publish(body="Hi {{ name }}")


@pytest.fixture
def experiment(versions):
    v1, v2 = versions
    return Experiment.objects.create(
        prompt=v1.prompt,
        control_version=v1,
        treatment_version=v2,
        traffic_fraction=0.5,
        primary_metric="quality_score",
        state=ExperimentState.RUNNING,
    )


@pytest.fixture
def writer(api_key_factory):
    return api_key_factory("write")[1]


def post(client, secret, scores):
    return client.post(
        URL, json.dumps({"scores": scores}), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )


def score(i, **kw):
    base = {
        "id": f"s-{i}",
        "prompt": "support-system",
        "version": 1,
        "session_id": f"sess-{i}",
        "metrics": {"quality_score": 0.5},
    }
    return {**base, **kw}


def session_in(experiment, variant):
    return next(f"sess-{i}" for i in range(1000) if experiment.assign(f"sess-{i}") == variant)


def test_batch_is_stored_one_row_per_metric(client, versions, writer):
    r = post(client, writer, [score(1, metrics={"quality_score": 0.8, "latency_ms": 420}), score(2, version=2)])
    assert r.status_code == 200, r.content
    assert r.json() == {"scores": 2, "values_stored": 3, "values_duplicate": 0}
    rows = {(s.client_id, s.metric): (s.version.number, s.value) for s in Score.objects.all()}
    assert rows == {
        ("s-1", "quality_score"): (1, 0.8),
        ("s-1", "latency_ms"): (1, 420.0),
        ("s-2", "quality_score"): (2, 0.5),
    }


def test_repost_of_the_same_id_is_a_no_op(client, versions, writer):
    batch = [score(1), score(2)]
    assert post(client, writer, batch).json()["values_stored"] == 2
    again = post(client, writer, batch + [score(3)])
    assert again.status_code == 200
    assert again.json() == {"scores": 3, "values_stored": 1, "values_duplicate": 2}
    assert Score.objects.count() == 3


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        ({"prompt": "nope-system"}, "prompt_not_found"),
        ({"version": 9}, "version_not_found"),
        ({"metrics": {"quality_score": "0.8"}}, "invalid_metric"),
        ({"metrics": {"quality_score": True}}, "invalid_metric"),
        ({"metrics": {"quality_score": 1e12}}, "invalid_metric"),
        ({"metrics": {}}, "invalid_score"),
        ({"id": ""}, "invalid_score"),
        ({"timestamp": "yesterday"}, "invalid_score"),
        ({"timestamp": "2999-01-01T00:00:00Z"}, "invalid_score"),
        ({"experiment": 12345}, "experiment_not_found"),
        ({"variant": "treatment"}, "variant_mismatch"),
    ],
)
def test_a_bad_item_is_a_400_naming_its_index_and_nothing_is_stored(client, versions, writer, bad, code):
    r = post(client, writer, [score(0), score(1), score(2, **bad)])
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["code"], error["index"]) == (code, 2)
    assert "scores[2]" in error["message"]
    assert Score.objects.count() == 0


def test_non_finite_values_are_rejected(versions):
    with pytest.raises(Exception) as exc:
        scores_ingest(scores=[score(0, metrics={"q": float("nan")})], actor=Actor(via=MoveVia.CLI))
    assert exc.value.details["index"] == 0
    assert Score.objects.count() == 0


def test_more_than_1000_scores_is_rejected(client, versions, writer):
    r = post(client, writer, [score(i) for i in range(1001)])
    assert r.status_code == 400 and r.json()["error"]["code"] == "too_many_scores"
    assert Score.objects.count() == 0


def test_1000_scores_in_one_request(client, versions, writer):
    r = post(client, writer, [score(i) for i in range(1000)])
    assert r.status_code == 200 and r.json()["values_stored"] == 1000
    assert Score.objects.count() == 1000


def test_scope_and_auth_are_enforced(client, versions, api_key_factory):
    _, reader = api_key_factory("read", name="reader")
    assert post(client, reader, [score(1)]).status_code == 403
    assert client.post(URL, "{}", content_type="application/json").status_code == 401
    with pytest.raises(Forbidden):
        scores_ingest(scores=[score(1)], actor=Actor(via=MoveVia.API, api_key=ApiKey.find(reader)))
    assert Score.objects.count() == 0


def test_experiment_variant_comes_from_the_session(client, experiment, writer):
    treated = session_in(experiment, TREATMENT)
    r = post(client, writer, [score(1, session_id=treated, experiment=experiment.pk, version=2, variant="treatment")])
    assert r.status_code == 200, r.content
    assert Score.objects.get().variant == TREATMENT


def test_mismatching_variant_or_version_is_rejected(client, experiment, writer):
    treated = session_in(experiment, TREATMENT)
    wrong_variant = post(
        client, writer, [score(1, session_id=treated, experiment=experiment.pk, version=2, variant="control")]
    )
    assert wrong_variant.status_code == 400 and wrong_variant.json()["error"]["code"] == "variant_mismatch"
    wrong_version = post(client, writer, [score(1, session_id=treated, experiment=experiment.pk, version=1)])
    assert wrong_version.status_code == 400 and wrong_version.json()["error"]["code"] == "version_mismatch"
    no_session = post(client, writer, [score(1, session_id="", experiment=experiment.pk, version=2)])
    assert no_session.status_code == 400 and no_session.json()["error"]["index"] == 0
    assert Score.objects.count() == 0


def test_draft_experiment_takes_no_scores(client, experiment, writer):
    Experiment.objects.filter(pk=experiment.pk).update(state=ExperimentState.DRAFT)
    control = session_in(experiment, CONTROL)
    r = post(client, writer, [score(1, session_id=control, experiment=experiment.pk)])
    assert r.status_code == 400 and r.json()["error"]["code"] == "experiment_not_started"


def test_running_sums_average_per_session_and_match_a_rebuild(client, experiment, writer):
    control = session_in(experiment, CONTROL)
    treated = [f"sess-{i}" for i in range(200) if experiment.assign(f"sess-{i}") == TREATMENT][:2]
    batch = [
        score(1, session_id=control, experiment=experiment.pk, metrics={"quality_score": 0.2}),
        score(2, session_id=treated[0], experiment=experiment.pk, version=2, metrics={"quality_score": 0.6}),
        score(3, session_id=treated[1], experiment=experiment.pk, version=2, metrics={"quality_score": 1.0}),
    ]
    assert post(client, writer, batch).status_code == 200
    # a second score for the same session moves that session's mean from 0.6 to 0.8
    later = [score(4, session_id=treated[0], experiment=experiment.pk, version=2, metrics={"quality_score": 1.0})]
    assert post(client, writer, later).status_code == 200
    assert post(client, writer, later).json()["values_duplicate"] == 1  # not counted twice

    def totals():
        return {
            (t.variant, t.metric): (t.sessions, round(t.sum, 12), round(t.sum_sq, 12), t.scores)
            for t in ExperimentTotal.objects.filter(experiment=experiment)
        }

    expected = {
        (CONTROL, "quality_score"): (1, 0.2, 0.04, 1),
        (TREATMENT, "quality_score"): (2, 1.8, round(0.8**2 + 1.0, 12), 3),
    }
    assert totals() == expected
    session = ExperimentSession.objects.get(experiment=experiment, session_id=treated[0])
    assert (session.n, session.total, session.variant) == (2, 1.6, TREATMENT)
    experiment_totals_rebuild(experiment)
    assert totals() == expected
