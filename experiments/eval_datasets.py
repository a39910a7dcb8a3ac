"""Evaluation datasets and their cases as services: create, edit, import, remove, history; which dataset and alpha
gate a prompt's promotions.

Parsing and checking uploaded cases is `experiments.datasets`; runs over a dataset are `experiments.evaluation`.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from experiments.datasets import CaseData, RowErrors, validate_cases
from experiments.models.evaluation import (
    QUALITY_SCORE,
    Case,
    Dataset,
    PromptEvalSettings,
)
from experiments.scorers import (
    ScorerSpecError,
    normalise_specs,
    parse_scorers,
)
from promptreg.exceptions import InvalidInput, NotFound
from promptreg.history import set_change_reason
from promptreg.models import PolicyArea, Prompt, Scope
from promptreg.services import POLICY, Actor, policy_change_record

DEFAULT_ALPHA = 0.05


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


def gated_by(dataset: Dataset) -> list[Prompt]:
    """The prompts whose eval gate runs on `dataset`."""
    return list(Prompt.objects.filter(eval_settings__dataset=dataset).order_by("name"))


def _gate_change(dataset: Dataset, actor: Actor, area: str, what: str, *, before: Any, after: Any) -> None:
    """A change that could loosen the eval gate of every prompt gated by `dataset` (its scorers or its cases):
    a policy change (Reviewer or Admin), written into those prompts' audit trails.
    Nothing to check for a dataset no prompt is gated by."""
    gated = gated_by(dataset)
    if not gated:
        return
    actor.require(POLICY, f"{what} of '{dataset.name}', the gate dataset of {', '.join(p.name for p in gated)}")
    for prompt in gated:
        policy_change_record(
            actor=actor, area=area, before=before, after=after, prompt=prompt, reason=f"dataset '{dataset.name}'"
        )


def _case_text(case: Case | CaseData) -> str:
    return json.dumps({"variables": case.variables, "expected": case.expected, "tags": case.tags}, sort_keys=True)


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
    if before != after:
        _gate_change(dataset, actor, PolicyArea.DATASET_SCORERS, "Changing the scorers", before=before, after=after)
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
    """Add validated cases (see experiments.datasets.parse_upload); `replace` removes the current ones first.
    On a gate dataset either is a policy change (see `_gate_change`): removed cases could be the ones a bad version
    fails, and added ones, whose `expected` the adder writes, could outweigh them."""
    actor.require(Scope.WRITE, "Importing cases")
    dataset = _lock_dataset(dataset)
    current = dataset.active_cases()
    count = current.count()
    if replace and count:
        _gate_change(
            dataset,
            actor,
            PolicyArea.DATASET_CASES,
            "Replacing the cases",
            before=f"{count} cases",
            after=f"{len(rows)} cases (all replaced)",
        )
        for case in list(current):
            _remove(case)
    elif rows:
        _gate_change(
            dataset,
            actor,
            PolicyArea.DATASET_CASES,
            "Adding cases",
            before=f"{count} cases",
            after=f"{count + len(rows)} cases ({len(rows)} added)",
        )
    _add_cases(dataset, rows)
    _touch(dataset, f"{len(rows)} cases imported by {actor.name}")
    return len(rows)


def dataset_add_cases(*, dataset: Dataset, actor: Actor, cases: Any) -> int:
    """Add cases in their JSON shape (`[{"variables", "expected", "tags"}]`), all or nothing."""
    try:
        rows = validate_cases(cases)
    except RowErrors as exc:
        raise _row_errors(exc) from None
    if not rows:
        raise InvalidInput("'cases' is empty.", code="invalid_cases")
    return dataset_import(dataset=dataset, actor=actor, rows=rows)


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
    """Add a case, or edit one (history keeps the old values; on a gate dataset either is a policy change)."""
    actor.require(Scope.WRITE, "Editing cases")
    dataset = _lock_dataset(dataset)
    data = _one_case(variables, expected, tags or [])
    if case is None:
        _add_cases(dataset, [data])
        _gate_change(dataset, actor, PolicyArea.DATASET_CASES, "Adding a case", before="", after=_case_text(data))
        case = dataset.cases.order_by("-position").first()
        assert case is not None, "the case just added"
    else:
        case = Case.objects.get(pk=case.pk, dataset=dataset, removed_at__isnull=True)
        before = _case_text(case)
        case.variables, case.expected, case.tags = data.variables, data.expected, data.tags
        if _case_text(case) == before:
            return case
        _gate_change(
            dataset,
            actor,
            PolicyArea.DATASET_CASES,
            f"Editing case {case.position}",
            before=before,
            after=_case_text(case),
        )
        set_change_reason(case, f"edited by {actor.name}")
        case.save()
    _touch(dataset, f"case {case.position} saved by {actor.name}")
    return case


def _remove(case: Case) -> None:
    case.removed_at = timezone.now()
    case.save()


@transaction.atomic
def case_remove(*, case: Case, actor: Actor) -> None:
    """Hide a case from new runs; past runs keep their results for it (on a gate dataset, a policy change)."""
    actor.require(Scope.WRITE, "Removing cases")
    dataset = _lock_dataset(case.dataset)
    case = Case.objects.get(pk=case.pk, dataset=dataset)
    if case.removed_at is None:
        _gate_change(
            dataset,
            actor,
            PolicyArea.DATASET_CASES,
            f"Removing case {case.position}",
            before=_case_text(case),
            after="",
        )
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
