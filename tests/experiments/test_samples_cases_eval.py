"""A production sample added to the prompt's dataset is enforced by the next evaluation: a real run through the
runner against the fake provider fails the version on it, and the eval gate says so."""

from __future__ import annotations

import json

from experiments.eval_datasets import dataset_create, prompt_set_dataset
from experiments.gates import eval_gate, required_failures
from experiments.models import EvalRun, RunState
from experiments.runner import run_execute
from promptreg.models import ReviewPolicy
from tests.experiments.conftest import SERVER
from tests.experiments.samples_helpers import make_sample


def evaluate(client, secret, version, dataset) -> EvalRun:
    response = client.post(
        "/api/v1/evaluations",
        json.dumps({"prompt": version.prompt.name, "version": version.number, "dataset": dataset.pk}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 202
    run_execute(response.json()["id"])
    return EvalRun.objects.get(pk=response.json()["id"])


def test_a_sample_added_to_the_dataset_is_enforced_by_the_next_evaluation(client, api_key_factory, fake_llm, publish):
    _, secret = api_key_factory("admin")  # adding to a gate dataset is a policy change
    dataset = dataset_create(
        name="geo",
        scorers=[{"name": "exact_match", "required": True}],
        cases=[{"variables": {"query": "capital of France [[answer:Paris]]"}, "expected": "Paris"}],
        actor=SERVER,
    )
    v1 = publish(name="geo-answer", body="{{ query }}", prompt_type="extraction")
    prompt_set_dataset(prompt=v1.prompt, dataset=dataset, actor=SERVER)
    policy = ReviewPolicy.for_type(v1.prompt.prompt_type)
    # In production, v1 answered a question about Spain wrongly and the app scored it 0.
    sample = make_sample(v1, {"query": "capital of Spain [[answer:Barcelona]]"}, "Barcelona", {"quality_score": 0.0})
    v2 = publish(name="geo-answer", body="Answer: {{ query }}", prompt_type="extraction")

    before = evaluate(client, secret, v2, dataset)
    assert (before.state, before.total, required_failures(before)) == (RunState.DONE, 1, {})
    assert eval_gate(v2, policy) is None

    response = client.post(
        f"/api/v1/datasets/{dataset.pk}/cases",
        json.dumps({"from_samples": [{"id": sample.pk, "expected": "Madrid"}]}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 201
    case = dataset.active_cases().last()
    assert (case.variables, case.expected, case.tags) == (sample.variables, "Madrid", ["from-sample", "v1"])

    after = evaluate(client, secret, v2, dataset)
    assert after.state == RunState.DONE and after.total == 2 and case.pk in after.case_ids
    result = after.results.get(case=case)
    assert (result.output, result.scores["exact_match"]) == ("Barcelona", 0.0)
    assert required_failures(after) == {"exact_match": [case.position]}
    assert eval_gate(v2, policy) == "eval gate: required scorer 'exact_match' failed on 1 case (case 2)"
