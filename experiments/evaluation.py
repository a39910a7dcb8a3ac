"""Offline evaluation runs: starting them (one version, or a comparison against production), cancelling them, and
reading them.

Datasets and a prompt's gate dataset are `experiments.eval_datasets`; the worker side is `experiments.runner`;
comparing runs, the eval gate and the version page's panel are `experiments.gates`; the statistics are
`experiments.stats`.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from experiments.eval_datasets import prompt_dataset
from experiments.llm import NO_PROVIDER, LLMConfig, provider_effective
from experiments.models.evaluation import (
    QUALITY_SCORE,
    Case,
    Dataset,
    EvalRun,
    RunState,
)
from experiments.runner import run_metrics, stale_before, store_metrics
from promptreg import broker
from promptreg.exceptions import InvalidInput, NotFound
from promptreg.models import PRODUCTION, PromptVersion, Scope
from promptreg.services import Actor
from promptreg.templating import CompileError


def missing_variables(version: PromptVersion, cases: list[Case]) -> list[str]:
    """One sentence per case that lacks a variable the template needs, its includes' variables too."""
    try:
        needed = version.resolved_template.variables
    except CompileError as exc:
        raise InvalidInput(f"v{version.number} cannot be evaluated: {exc}", code="dependency_unresolved") from None
    problems = []
    for case in cases:
        missing = [v for v in needed if v not in case.variables]
        if missing:
            problems.append(f"case {case.position} lacks {', '.join(missing)}")
    return problems


def _prepare(version: PromptVersion, dataset: Dataset) -> list[int]:
    if not provider_effective().base_url:
        raise InvalidInput(NO_PROVIDER, code="no_provider")
    cases = list(dataset.active_cases())
    if not cases:
        raise InvalidInput(f"The dataset '{dataset.name}' has no cases.", code="empty_dataset")
    problems = missing_variables(version, cases)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InvalidInput(
            f"{len(problems)} case{'s' if len(problems) != 1 else ''} of '{dataset.name}' cannot fill "
            f"v{version.number}'s template: {shown}.",
            code="missing_variables",
            details={"problems": problems},
        )
    return [c.pk for c in cases]


def _queue(run: EvalRun) -> None:
    from experiments.tasks import evaluation_run

    broker.enqueue_on_commit(evaluation_run, run)


@transaction.atomic
def evaluation_start(
    *, version: PromptVersion, dataset: Dataset, actor: Actor, baseline: EvalRun | None = None
) -> EvalRun:
    """Queue a run of `version` over the dataset's current cases; refuses (and writes nothing) when cases cannot
    compile."""
    actor.require(Scope.WRITE, "Running an evaluation")
    case_ids = _prepare(version, dataset)
    run = EvalRun.objects.create(
        version=version,
        dataset=dataset,
        baseline=baseline,
        case_ids=case_ids,
        total=len(case_ids),
        scorers=dataset.scorers,
        primary_metric=dataset.primary_metric,
        model=LLMConfig.for_version(version.config).model,
        created_by=actor.user,
        created_via=actor.via,
    )
    _queue(run)
    return run


def _reusable_run(version: PromptVersion, dataset: Dataset) -> EvalRun | None:
    """A run of this version on the dataset as it is now (no case or scorer changed since), not failed."""
    return (
        EvalRun.objects.filter(
            version=version,
            dataset=dataset,
            state__in=(RunState.QUEUED, RunState.RUNNING, RunState.DONE),
            created_at__gte=dataset.updated_at,
        )
        .order_by("-created_at", "-id")
        .first()
    )


@transaction.atomic
def evaluation_compare_start(*, version: PromptVersion, actor: Actor) -> EvalRun:
    """Run a version on its prompt's dataset and make sure production has a run to compare with."""
    actor.require(Scope.WRITE, "Running an evaluation")
    dataset = prompt_dataset(version.prompt)
    if dataset is None:
        raise InvalidInput(f"'{version.prompt.name}' has no evaluation dataset; choose one first.", code="no_dataset")
    production = version.prompt.label_version(PRODUCTION)
    baseline = None
    if production is not None and production.pk != version.pk:
        baseline = _reusable_run(production, dataset) or evaluation_start(
            version=production, dataset=dataset, actor=actor
        )
    return evaluation_start(version=version, dataset=dataset, actor=actor, baseline=baseline)


@transaction.atomic
def evaluation_alone_start(*, version: PromptVersion, actor: Actor) -> EvalRun:
    """Run a version on its prompt's dataset, without a baseline (e.g. nothing is live yet); a run of it on the
    dataset as it is now (say, the one queued when it was submitted) is reused rather than repeated."""
    actor.require(Scope.WRITE, "Running an evaluation")
    dataset = prompt_dataset(version.prompt)
    if dataset is None:
        raise InvalidInput(f"'{version.prompt.name}' has no evaluation dataset; choose one first.", code="no_dataset")
    return _reusable_run(version, dataset) or evaluation_start(version=version, dataset=dataset, actor=actor)


def evaluation_on_submit(version: PromptVersion) -> EvalRun | None:
    """Automatic comparison when a version is submitted for review (if its prompt has a dataset).

    When the cases cannot fill the template, a failed run records why, so the
    reviewer's page shows it instead of silently showing nothing.
    """
    actor = Actor(via="auto")
    dataset = prompt_dataset(version.prompt)
    if dataset is None:
        return None
    try:
        return evaluation_compare_start(version=version, actor=actor)
    except InvalidInput as exc:
        return EvalRun.objects.create(
            version=version,
            dataset=dataset,
            state=RunState.FAILED,
            error=exc.message,
            created_via=actor.via,
            finished_at=timezone.now(),
        )


def evaluation_cancel(*, run: EvalRun, actor: Actor) -> EvalRun:
    """Cancel a queued run at once; a running one stops at its next chunk (or now, if its worker is gone)."""
    actor.require(Scope.WRITE, "Cancelling an evaluation")
    now = timezone.now()
    if EvalRun.objects.filter(pk=run.pk, state=RunState.QUEUED).update(state=RunState.CANCELLED, finished_at=now):
        return EvalRun.objects.get(pk=run.pk)
    if EvalRun.objects.filter(pk=run.pk, state=RunState.RUNNING, heartbeat_at__lt=stale_before()).update(
        state=RunState.CANCELLED, finished_at=now, metrics=None
    ):
        store_metrics(run.pk)
        return EvalRun.objects.get(pk=run.pk)
    if not EvalRun.objects.filter(pk=run.pk, state=RunState.RUNNING).update(cancel_requested=True):
        current = EvalRun.objects.get(pk=run.pk)
        raise InvalidInput(f"The run is already {current.get_state_display().lower()}.", code="invalid_state")
    return EvalRun.objects.get(pk=run.pk)


def get_run(run_id: int) -> EvalRun:
    try:
        return EvalRun.objects.select_related("version__prompt", "dataset", "baseline__version").get(pk=run_id)
    except EvalRun.DoesNotExist:
        raise NotFound(f"No evaluation run {run_id}.", code="run_not_found") from None


def run_to_dict(run: EvalRun) -> dict[str, Any]:
    """The public shape of a run (GET /api/v1/evaluations/{id}). Metrics are live while it runs."""
    metrics = run.metrics
    if metrics is None and run.state in (RunState.RUNNING, RunState.CANCELLED):
        metrics = run_metrics(run)
    return {
        "id": run.pk,
        "state": run.state,
        "prompt": run.version.prompt.name,
        "version": run.version.number,
        "dataset": run.dataset_id,
        "model": run.model,
        "progress": {"done": run.done, "total": run.total},
        "metrics": metrics or {},
        "primary_metric": QUALITY_SCORE,
        "baseline": run.baseline_id,
        "error": run.error or None,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
