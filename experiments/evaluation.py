"""Offline evaluation services: datasets and their cases, a prompt's gate dataset, starting and cancelling runs.

The worker side is `experiments.runner`; comparing runs, the eval gate and the
version page's panel are `experiments.gates`; the statistics are `experiments.stats`.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from experiments.datasets import CaseData, RowErrors, validate_cases
from experiments.llm import NO_PROVIDER, LLMConfig, provider_effective
from experiments.models.evaluation import (
    QUALITY_SCORE,
    Case,
    Dataset,
    EvalRun,
    PromptEvalSettings,
    RunState,
)
from experiments.runner import run_metrics, stale_before, store_metrics
from experiments.scorers import (
    ScorerSpecError,
    normalise_specs,
    parse_scorers,
)
from promptreg import broker
from promptreg.exceptions import InvalidInput, NotFound
from promptreg.history import set_change_reason
from promptreg.models import PRODUCTION, PolicyArea, Prompt, PromptVersion, Scope
from promptreg.services import POLICY, Actor, policy_change_record

DEFAULT_ALPHA = 0.05


# ---------------------------------------------------------------- datasets


def _check_scorers(specs: Any, primary_metric: str) -> list[dict[str, Any]]:
    try:
        normalised = normalise_specs(specs)
    except ScorerSpecError as exc:
        raise InvalidInput(
            "Scorers: " + "; ".join(exc.problems), code="invalid_scorers", details={"problems": exc.problems}
        ) from None
    metrics = [s.metric for s in parse_scorers(normalised)]
    if primary_metric and primary_metric not in metrics:
        raise InvalidInput(
            f"The primary metric '{primary_metric}' is not one of the scorers' metrics ({', '.join(metrics)}).",
            code="invalid_primary",
        )
    return normalised


def _row_errors(exc: RowErrors) -> InvalidInput:
    listed = [{"line": line, "reason": reason} for line, reason in exc.problems]
    return InvalidInput(
        f"{len(listed)} bad row{'s' if len(listed) != 1 else ''}, nothing was imported: " + str(exc),
        code="invalid_cases",
        details={"rows": listed},
    )


def _name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("A dataset needs a name of at most 200 characters.", code="missing_field")
    return name


@transaction.atomic
def dataset_create(
    *, name: str, scorers: Any, actor: Actor, description: str = "", primary_metric: str = "", cases: Any = None
) -> Dataset:
    """Create a dataset with its scorers and (optionally) its cases, all or nothing."""
    actor.require(Scope.WRITE, "Creating a dataset")
    name = _name(name)
    specs = _check_scorers(scorers, primary_metric)
    try:
        rows = validate_cases(cases) if cases is not None else []
    except RowErrors as exc:
        raise _row_errors(exc) from None
    if Dataset.objects.filter(name=name).exists():
        raise InvalidInput(f"A dataset named '{name}' already exists.", code="duplicate_name")
    dataset = Dataset.objects.create(
        name=name, description=description, scorers=specs, primary_metric=primary_metric, created_by=actor.user
    )
    _add_cases(dataset, rows)
    return dataset


def _lock_dataset(dataset: Dataset) -> Dataset:
    return Dataset.objects.select_for_update().get(pk=dataset.pk)


def _touch(dataset: Dataset, reason: str) -> None:
    dataset.updated_at = timezone.now()
    set_change_reason(dataset, reason)
    dataset.save()


def _scoring(scorers: Any, primary_metric: str) -> str:
    return json.dumps({"scorers": scorers, "primary_metric": primary_metric or QUALITY_SCORE}, sort_keys=True)


@transaction.atomic
def dataset_update(
    *, dataset: Dataset, actor: Actor, name: str, scorers: Any, description: str = "", primary_metric: str = ""
) -> Dataset:
    """Edit a dataset. Its scorers and primary metric decide the eval gate of every prompt that uses it
    as its gate dataset: changing those is a policy change (Reviewer or Admin), in those prompts' audit trails."""
    actor.require(Scope.WRITE, "Editing a dataset")
    dataset = _lock_dataset(dataset)
    name = _name(name)
    if Dataset.objects.filter(name=name).exclude(pk=dataset.pk).exists():
        raise InvalidInput(f"A dataset named '{name}' already exists.", code="duplicate_name")
    specs = _check_scorers(scorers, primary_metric)
    before, after = _scoring(dataset.scorers, dataset.primary_metric), _scoring(specs, primary_metric)
    gated = list(Prompt.objects.filter(eval_settings__dataset=dataset).order_by("name"))
    if gated and before != after:
        actor.require(
            POLICY, f"Changing the scorers of '{dataset.name}', the gate dataset of {', '.join(p.name for p in gated)}"
        )
        for prompt in gated:
            policy_change_record(
                actor=actor,
                area=PolicyArea.DATASET_SCORERS,
                before=before,
                after=after,
                prompt=prompt,
                reason=f"dataset '{dataset.name}'",
            )
    dataset.scorers = specs
    dataset.name, dataset.description, dataset.primary_metric = name, description, primary_metric
    _touch(dataset, f"edited by {actor.name}")
    return dataset


def _add_cases(dataset: Dataset, rows: list[CaseData]) -> None:
    # One save per case (not bulk_create) so each case gets its history record.
    start = (dataset.cases.order_by("-position").values_list("position", flat=True).first() or 0) + 1
    for i, row in enumerate(rows):
        Case.objects.create(
            dataset=dataset, position=start + i, variables=row.variables, expected=row.expected, tags=row.tags
        )


@transaction.atomic
def dataset_import(*, dataset: Dataset, actor: Actor, rows: list[CaseData], replace: bool = False) -> int:
    """Add validated cases (see experiments.datasets.parse_upload); `replace` removes the current ones first."""
    actor.require(Scope.WRITE, "Importing cases")
    dataset = _lock_dataset(dataset)
    if replace:
        for case in dataset.active_cases():
            _remove(case)
    _add_cases(dataset, rows)
    _touch(dataset, f"{len(rows)} cases imported by {actor.name}")
    return len(rows)


def _one_case(variables: Any, expected: str, tags: list[str]) -> CaseData:
    try:
        return validate_cases([{"variables": variables, "expected": expected, "tags": tags}])[0]
    except RowErrors as exc:
        raise InvalidInput(exc.problems[0][1], code="invalid_case") from None


@transaction.atomic
def case_save(
    *,
    dataset: Dataset,
    actor: Actor,
    variables: Any,
    expected: str = "",
    tags: list[str] | None = None,
    case: Case | None = None,
) -> Case:
    """Add a case, or edit one (history keeps the old values)."""
    actor.require(Scope.WRITE, "Editing cases")
    dataset = _lock_dataset(dataset)
    data = _one_case(variables, expected, tags or [])
    if case is None:
        _add_cases(dataset, [data])
        case = dataset.cases.order_by("-position").first()
        assert case is not None, "the case just added"
    else:
        case = Case.objects.get(pk=case.pk, dataset=dataset, removed_at__isnull=True)
        case.variables, case.expected, case.tags = data.variables, data.expected, data.tags
        set_change_reason(case, f"edited by {actor.name}")
        case.save()
    _touch(dataset, f"case {case.position} saved by {actor.name}")
    return case


def _remove(case: Case) -> None:
    case.removed_at = timezone.now()
    case.save()


@transaction.atomic
def case_remove(*, case: Case, actor: Actor) -> None:
    """Hide a case from new runs; past runs keep their results for it."""
    actor.require(Scope.WRITE, "Removing cases")
    dataset = _lock_dataset(case.dataset)
    case = Case.objects.get(pk=case.pk, dataset=dataset)
    if case.removed_at is None:
        set_change_reason(case, f"removed by {actor.name}")
        _remove(case)
        _touch(dataset, f"case {case.position} removed by {actor.name}")


@transaction.atomic
def prompt_set_dataset(
    *, prompt: Prompt, dataset: Dataset | None, actor: Actor, alpha: float | None = None
) -> PromptEvalSettings:
    """Choose the dataset a prompt's versions are evaluated on (and gated by, for eval-gated types).

    A policy change, not the author's to make: Reviewers and Admins (API: the admin scope). It is
    recorded as a PolicyChange, so the prompt's audit trail shows who changed it and from what.
    """
    actor.require(POLICY, "Changing the evaluation dataset")
    if alpha is not None and not 0 < alpha < 0.5:
        raise InvalidInput("alpha must be between 0 and 0.5.", code="invalid_alpha")
    prompt = Prompt.objects.select_for_update().get(pk=prompt.pk)
    eval_settings, _ = PromptEvalSettings.objects.select_for_update().get_or_create(prompt=prompt)
    before = (eval_settings.dataset.name if eval_settings.dataset is not None else None, eval_settings.alpha)
    eval_settings.dataset = dataset
    if alpha is not None:
        eval_settings.alpha = alpha
    after = (dataset.name if dataset else None, eval_settings.alpha)
    if before == after:
        return eval_settings
    set_change_reason(eval_settings, f"set by {actor.name}")
    eval_settings.save()
    policy_change_record(
        actor=actor,
        area=PolicyArea.GATE_DATASET,
        prompt=prompt,
        before=f"{before[0] or '(none)'} (alpha {before[1]:g})",
        after=f"{after[0] or '(none)'} (alpha {after[1]:g})",
    )
    return eval_settings


def prompt_dataset(prompt: Prompt) -> Dataset | None:
    found = PromptEvalSettings.objects.filter(prompt=prompt).select_related("dataset").first()
    return found.dataset if found else None


def prompt_alpha(prompt: Prompt) -> float:
    found = PromptEvalSettings.objects.filter(prompt=prompt).values_list("alpha", flat=True).first()
    return found or DEFAULT_ALPHA


# ---------------------------------------------------------------- starting runs


def missing_variables(version: PromptVersion, cases: list[Case]) -> list[str]:
    """One sentence per case that lacks a variable the template needs."""
    needed = version.variables or version.template.variables
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


# ---------------------------------------------------------------- executing runs (in the worker)


# ---------------------------------------------------------------- statistics and comparison


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


def get_dataset(ref: int | str) -> Dataset:
    """A dataset by id or by name."""
    found = Dataset.objects.filter(pk=ref).first() if isinstance(ref, int) or str(ref).isdigit() else None
    found = found or Dataset.objects.filter(name=str(ref)).first()
    if found is None:
        raise NotFound(f"No dataset {ref!r}.", code="dataset_not_found")
    return found


def dataset_history(dataset: Dataset) -> list[dict[str, Any]]:
    """Every recorded change to the dataset and its cases, newest first, with what changed."""
    events = []
    records = list(dataset.history.select_related("history_user")) + list(
        Case.history.filter(dataset_id=dataset.pk).select_related("history_user")
    )
    for record in records:
        previous = record.prev_record
        changes = (
            []
            if previous is None
            else [f"{c.field}: {c.old!r} → {c.new!r}" for c in record.diff_against(previous).changes]
        )
        what = "dataset" if isinstance(record, dataset.history.model) else f"case {record.position}"
        events.append(
            {
                "when": record.history_date,
                "who": record.history_user.get_username() if record.history_user else "",
                "what": what,
                "action": {"+": "created", "~": "changed", "-": "deleted"}[record.history_type],
                "reason": record.history_change_reason or "",
                "changes": changes,
            }
        )
    events.sort(key=lambda e: e["when"], reverse=True)
    return events
