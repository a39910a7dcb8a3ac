"""JSON API for datasets and evaluation runs (mounted under /api/v1/ by rollout.api)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from ninja import Router, Schema
from pydantic import StrictInt

from experiments import eval_datasets, evaluation, samples
from promptreg.api_auth import ApiKeyAuth, api_actor
from promptreg.exceptions import InvalidInput, NotFound
from promptreg.models import Prompt

router = Router(tags=["evaluations"])


class DatasetIn(Schema):
    name: str
    scorers: list[Any]
    cases: list[Any] = []
    description: str = ""
    primary_metric: str = ""


class SamplePick(Schema):
    id: StrictInt
    expected: str | None = None


class CasesIn(Schema):
    from_samples: list[StrictInt | SamplePick] | None = None
    cases: list[Any] | None = None


class PromptDatasetIn(Schema):
    dataset: int | str | None


class EvaluationIn(Schema):
    prompt: str
    version: int
    dataset: int | str | None = None


def _dataset_dict(dataset) -> dict[str, Any]:
    return {
        "id": dataset.pk,
        "name": dataset.name,
        "description": dataset.description,
        "scorers": dataset.scorers,
        "primary_metric": dataset.primary_metric or None,
        "cases": dataset.active_cases().count(),
    }


@router.post(
    "/datasets", auth=ApiKeyAuth("write"), response={201: dict}, summary="Create a dataset with its scorers and cases"
)
def dataset_create(request: HttpRequest, body: DatasetIn):
    dataset = eval_datasets.dataset_create(
        name=body.name,
        scorers=body.scorers,
        cases=body.cases,
        description=body.description,
        primary_metric=body.primary_metric,
        actor=api_actor(request),
    )
    return JsonResponse(_dataset_dict(dataset), status=201)


@router.get(
    "/datasets/{ref}", auth=ApiKeyAuth("read"), response=dict, summary="A dataset (by id or name) and its cases"
)
def dataset_get(request: HttpRequest, ref: str):
    dataset = eval_datasets.get_dataset(ref)
    cases = [
        {"id": c.pk, "position": c.position, "variables": c.variables, "expected": c.expected, "tags": c.tags}
        for c in dataset.active_cases()
    ]
    return {**_dataset_dict(dataset), "case_list": cases}


@router.post(
    "/datasets/{ref}/cases",
    auth=ApiKeyAuth("write"),
    response={201: dict},
    summary="Add cases: explicit ones, or from production samples",
    description="`from_samples`: sample ids, or `{id, expected}` to give `expected` (by default the sample's output). "
    "On a prompt's eval dataset only that prompt's samples; a sample picked twice, or whose variables and expected the "
    "dataset already has, is not added again (`already_present` counts them).",
)
def dataset_cases_add(request: HttpRequest, ref: str, body: CasesIn):
    dataset = eval_datasets.get_dataset(ref)
    actor = api_actor(request)
    if (body.from_samples is None) == (body.cases is None):
        raise InvalidInput("Send either 'from_samples' (sample ids) or 'cases'.", code="invalid")
    if body.from_samples is not None:
        picks = [(p, None) if isinstance(p, int) else (p.id, p.expected) for p in body.from_samples]
        result = samples.cases_from_samples(dataset=dataset, picks=picks, actor=actor)
        return JsonResponse(
            {**_dataset_dict(dataset), "added": result.added, "already_present": result.already}, status=201
        )
    added = eval_datasets.dataset_add_cases(dataset=dataset, actor=actor, cases=body.cases)
    return JsonResponse({**_dataset_dict(dataset), "added": added}, status=201)


@router.put(
    "/prompts/{path:name}/dataset",
    auth=ApiKeyAuth("admin"),
    response=dict,
    summary="Set the prompt's evaluation dataset (id or name; null clears it): a policy change, admin scope",
)
def prompt_dataset_put(request: HttpRequest, name: str, body: PromptDatasetIn):
    prompt = Prompt.objects.filter(name=name).first()
    if prompt is None:
        raise NotFound(f"No prompt named '{name}'.", code="prompt_not_found")
    dataset = None if body.dataset in (None, "") else eval_datasets.get_dataset(body.dataset)
    eval_datasets.prompt_set_dataset(prompt=prompt, dataset=dataset, actor=api_actor(request))
    return {"prompt": prompt.name, "dataset": None if dataset is None else {"id": dataset.pk, "name": dataset.name}}


@router.post(
    "/evaluations", auth=ApiKeyAuth("write"), response={202: dict}, summary="Queue an evaluation run of a version"
)
def evaluation_create(request: HttpRequest, body: EvaluationIn):
    prompt = Prompt.objects.filter(name=body.prompt).first()
    if prompt is None:
        raise NotFound(f"No prompt named '{body.prompt}'.", code="prompt_not_found")
    version = prompt.versions.filter(number=body.version).first()
    if version is None:
        raise NotFound(f"'{prompt.name}' has no version {body.version}.", code="version_not_found")
    actor = api_actor(request)
    if body.dataset is None:
        run = evaluation.evaluation_compare_start(version=version, actor=actor)
    else:
        run = evaluation.evaluation_start(version=version, dataset=eval_datasets.get_dataset(body.dataset), actor=actor)
    return JsonResponse(evaluation.run_to_dict(run), status=202)


@router.get(
    "/evaluations/{run_id}", auth=ApiKeyAuth("read"), response=dict, summary="State, progress and metrics of a run"
)
def evaluation_get(request: HttpRequest, run_id: int):
    return evaluation.run_to_dict(evaluation.get_run(run_id))


@router.post(
    "/evaluations/{run_id}/cancel", auth=ApiKeyAuth("write"), response=dict, summary="Cancel a queued or running run"
)
def evaluation_cancel(request: HttpRequest, run_id: int):
    run = evaluation.evaluation_cancel(run=evaluation.get_run(run_id), actor=api_actor(request))
    return evaluation.run_to_dict(run)
