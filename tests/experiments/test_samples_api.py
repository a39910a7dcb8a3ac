"""GET /api/v1/prompts/{name}/samples, the sampling policy, and POST /api/v1/datasets/{id}/cases from samples."""

from __future__ import annotations

import json

import pytest

from experiments.eval_datasets import prompt_set_dataset
from experiments.models import Case, Dataset, SamplingPolicy
from tests.experiments.conftest import SERVER, make_dataset
from tests.experiments.samples_helpers import make_sample


def get(client, path, secret):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {secret}")


def send(client, method, path, body, secret):
    return getattr(client, method)(
        path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )


@pytest.fixture
def reader(api_key_factory):
    return api_key_factory("read")[1]


@pytest.fixture
def versions(publish):
    return publish(), publish(body="Hi {{ name }}")


@pytest.fixture
def stored(versions):
    v1, v2 = versions
    return {
        "good": make_sample(v1, {"name": "Ann"}, "Hello Ann", {"quality_score": 0.9, "latency_ms": 300}),
        "bad": make_sample(v2, {"name": "Bob"}, "Go away", {"quality_score": 0.1, "latency_ms": 900}),
        "meh": make_sample(v2, {"name": "Cy"}, "Hi?", {"quality_score": 0.5, "latency_ms": 100}),
        "unscored": make_sample(v2, {"name": "Di"}, "Hi Di", {"user_satisfaction": 1.0}),
    }


def test_worst_samples_of_a_version_with_their_scores(client, reader, stored):
    response = get(client, "/api/v1/prompts/support-system/samples?version=2&metric=quality_score&order=worst", reader)
    assert response.status_code == 200
    data = response.json()["data"]
    assert [d["output"] for d in data] == ["Go away", "Hi?"]  # v1's sample and the one without the metric left out
    assert data[0] == {
        "id": stored["bad"].pk,
        "version": 2,
        "variables": {"name": "Bob"},
        "output": "Go away",
        "metrics": {"quality_score": 0.1, "latency_ms": 900.0},
        "timestamp": stored["bad"].timestamp.isoformat(),
    }
    best = get(client, "/api/v1/prompts/support-system/samples?metric=quality_score&order=best&limit=1", reader)
    assert [d["output"] for d in best.json()["data"]] == ["Hello Ann"]


def test_worst_latency_is_the_highest(client, reader, stored):
    data = get(client, "/api/v1/prompts/support-system/samples?metric=latency_ms&order=worst", reader).json()["data"]
    assert [d["metrics"]["latency_ms"] for d in data] == [900.0, 300.0, 100.0]


def test_recent_is_newest_first_across_versions(client, reader, stored):
    data = get(client, "/api/v1/prompts/support-system/samples", reader).json()["data"]
    assert [d["id"] for d in data] == [s.pk for s in reversed(stored.values())]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("?order=worst", 400, "invalid"),
        ("?order=sideways", 400, "invalid"),
        ("?limit=201", 400, "invalid"),
        ("?version=9", 404, "version_not_found"),
    ],
)
def test_bad_queries_are_json_errors(client, reader, stored, query, status, code):
    response = get(client, f"/api/v1/prompts/support-system/samples{query}", reader)
    assert response.status_code == status and response.json()["error"]["code"] == code


def test_samples_need_a_key_and_a_known_prompt(client, reader, stored):
    assert client.get("/api/v1/prompts/support-system/samples").status_code == 401
    response = get(client, "/api/v1/prompts/nobody-system/samples", reader)
    assert response.status_code == 404 and response.json()["error"]["code"] == "prompt_not_found"


def test_sampling_policy_is_set_with_a_deploy_key(client, api_key_factory, versions, settings):
    settings.SAMPLE_RETENTION_DAYS = 30
    _, writer = api_key_factory("write")
    _, deployer = api_key_factory("deploy")
    path = "/api/v1/prompts/support-system/sampling"
    assert get(client, path, deployer).json() == {"prompt": "support-system", "rate": 1.0, "retention_days": 30}

    response = send(client, "put", path, {"rate": 0.1, "retention_days": 7}, writer)
    assert response.status_code == 403 and not SamplingPolicy.objects.exists()
    response = send(client, "put", path, {"rate": 1.5}, deployer)
    assert response.status_code == 400 and "rate must be" in response.json()["error"]["message"]
    response = send(client, "put", path, {"rate": 0.1, "retention_days": 0}, deployer)
    assert response.status_code == 400 and not SamplingPolicy.objects.exists()

    response = send(client, "put", path, {"rate": 0.1, "retention_days": 7}, deployer)
    assert response.json() == {"prompt": "support-system", "rate": 0.1, "retention_days": 7}
    policy = SamplingPolicy.objects.get()
    assert (policy.rate, policy.retention_days) == (0.1, 7)
    assert policy.history.first().history_change_reason == "set by API key test-key"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"rate": True}, "rate"),
        ({"rate": "0.5"}, "rate"),
        ({"rate": 0.5, "retention_days": True}, "retention_days"),
        ({"rate": 0.5, "retention_days": "7"}, "retention_days"),
        ({"rate": 0.5, "retention_days": 7.5}, "retention_days"),
    ],
)
def test_sampling_takes_numbers_not_booleans_or_text(client, api_key_factory, versions, body, where):
    _, deployer = api_key_factory("deploy")
    response = send(client, "put", "/api/v1/prompts/support-system/sampling", body, deployer)
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "invalid" and error["message"].startswith(f"body.{where}: ")
    assert not SamplingPolicy.objects.exists()


# ---------------------------------------------------------------- samples become cases


@pytest.fixture
def dataset(db):
    return make_dataset(answers=["Paris"])


def test_cases_from_samples_take_the_output_or_a_correction(client, api_key_factory, stored, dataset):
    _, secret = api_key_factory("read", "write")
    body = {"from_samples": [stored["good"].pk, {"id": stored["bad"].pk, "expected": "Hello Bob"}, stored["good"].pk]}
    response = send(client, "post", f"/api/v1/datasets/{dataset.pk}/cases", body, secret)
    assert response.status_code == 201
    assert response.json()["added"] == 2 and response.json()["cases"] == 3

    cases = get(client, f"/api/v1/datasets/{dataset.pk}", secret).json()["case_list"]
    assert [(c["variables"], c["expected"], c["tags"]) for c in cases[1:]] == [
        ({"name": "Ann"}, "Hello Ann", ["from-sample", "v1"]),
        ({"name": "Bob"}, "Hello Bob", ["from-sample", "v2"]),
    ]
    assert [c["position"] for c in cases] == [1, 2, 3]


def test_explicit_cases_are_added_too(client, api_key_factory, dataset):
    _, secret = api_key_factory("write")
    body = {"cases": [{"variables": {"query": "capital of Italy"}, "expected": "Rome"}]}
    response = send(client, "post", f"/api/v1/datasets/{dataset.name}/cases", body, secret)
    assert response.status_code == 201 and response.json()["added"] == 1
    assert dataset.active_cases().last().expected == "Rome"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"from_samples": [999999]}, 404, "not_found"),
        ({}, 400, "invalid"),
        ({"from_samples": [], "cases": []}, 400, "invalid"),
        ({"from_samples": []}, 400, "invalid"),
        ({"cases": [{"expected": "no variables"}]}, 400, "invalid_cases"),
        ({"from_samples": ["one"]}, 400, "invalid"),
        ({"from_samples": [True]}, 400, "invalid"),
        ({"from_samples": [{"id": "1"}]}, 400, "invalid"),
    ],
)
def test_bad_case_requests_add_nothing(client, api_key_factory, stored, dataset, body, status, code):
    _, secret = api_key_factory("write")
    if body.get("from_samples") == [999999]:
        body = {"from_samples": [stored["good"].pk, 999999]}
    response = send(client, "post", f"/api/v1/datasets/{dataset.pk}/cases", body, secret)
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert Case.objects.filter(dataset=dataset).count() == 1


def test_adding_cases_needs_the_write_scope(client, reader, stored, dataset):
    response = send(client, "post", f"/api/v1/datasets/{dataset.pk}/cases", {"from_samples": [1]}, reader)
    assert response.status_code == 403
    assert Dataset.objects.get().active_cases().count() == 1


def test_a_sample_is_added_once(client, api_key_factory, versions, dataset):
    _, secret = api_key_factory("write")
    v1, _ = versions
    twin = [make_sample(v1, {"name": "Ann"}, "Hello Ann") for _ in range(2)]
    path = f"/api/v1/datasets/{dataset.pk}/cases"
    response = send(client, "post", path, {"from_samples": [twin[0].pk] * 3}, secret)
    assert (response.status_code, response.json()["added"], response.json()["already_present"]) == (201, 1, 0)
    # Again, and a second sample with the same variables and output: the dataset has that case already.
    response = send(client, "post", path, {"from_samples": [twin[0].pk, twin[1].pk]}, secret)
    assert (response.status_code, response.json()["added"], response.json()["already_present"]) == (201, 0, 2)
    # A different expected answer is a different case.
    response = send(client, "post", path, {"from_samples": [{"id": twin[1].pk, "expected": "Hi Ann"}]}, secret)
    assert response.json()["added"] == 1
    assert [c.expected for c in dataset.active_cases()][1:] == ["Hello Ann", "Hi Ann"]


def test_a_gate_dataset_takes_only_its_prompts_samples(client, api_key_factory, versions, dataset, publish):
    _, admin = api_key_factory("admin")
    v1, _ = versions
    prompt_set_dataset(prompt=v1.prompt, dataset=dataset, actor=SERVER)
    other = make_sample(publish(name="css-system", body="{{ q }}"), {"q": "A"}, "a")
    own = make_sample(v1, {"name": "Ann"}, "Hello Ann")
    path = f"/api/v1/datasets/{dataset.name}/cases"
    response = send(client, "post", path, {"from_samples": [own.pk, other.pk]}, admin)
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["samples"]) == (400, "sample_of_other_prompt", [other.pk])
    assert f"sample {other.pk} is of 'css-system'" in error["message"] and "support-system" in error["message"]
    assert dataset.active_cases().count() == 1
    response = send(client, "post", path, {"from_samples": [own.pk]}, admin)
    assert response.status_code == 201 and response.json()["added"] == 1


def test_a_sample_with_variables_no_case_may_have_is_refused(client, api_key_factory, versions, dataset):
    _, secret = api_key_factory("write")
    stale = make_sample(versions[0], {"bad name": "x"}, "out")  # stored before ingestion checked names
    response = send(client, "post", f"/api/v1/datasets/{dataset.pk}/cases", {"from_samples": [stale.pk]}, secret)
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (400, "invalid_sample")
    assert error["message"].startswith(f"Sample {stale.pk} cannot become a case: variable name 'bad name' is not")
    assert dataset.active_cases().count() == 1
