"""The eval gate and what it reads: a version's run compared with production's on the prompt's dataset
(a paired test per metric), and the evaluation panels of the version and prompt pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from experiments.eval_datasets import DEFAULT_ALPHA, prompt_alpha, prompt_dataset
from experiments.models.evaluation import (
    QUALITY_SCORE,
    Case,
    Dataset,
    EvalResult,
    EvalRun,
    RunState,
)
from experiments.scorers import (
    parse_scorers,
)
from experiments.stats import paired_test
from promptreg.models import PRODUCTION, Prompt, PromptVersion, ReviewPolicy


@dataclass
class CaseDiff:
    case: Case
    baseline: EvalResult
    candidate: EvalResult
    diff: float

    @property
    def regressed(self) -> bool:
        return self.diff < -1e-12


@dataclass
class Comparison:
    candidate: EvalRun
    baseline: EvalRun
    metrics: list[dict[str, Any]]
    cases: list[CaseDiff]
    alpha: float

    @property
    def primary(self) -> dict[str, Any]:
        return next(m for m in self.metrics if m["metric"] == QUALITY_SCORE)

    @property
    def regressed_cases(self) -> list[CaseDiff]:
        return [c for c in self.cases if c.regressed]


def compare(candidate: EvalRun, baseline: EvalRun, alpha: float = DEFAULT_ALPHA) -> Comparison:
    """Candidate vs baseline over the cases both ran: a paired test per metric, cases sorted worst drop first."""
    mine = {r.case_id: r for r in candidate.results.select_related("case")}
    theirs = {r.case_id: r for r in baseline.results.all()}
    common = [i for i in mine if i in theirs]
    names = [s.metric for s in parse_scorers(candidate.scorers)] + [QUALITY_SCORE]
    names = [n for n in names if all(n in mine[i].scores and n in theirs[i].scores for i in common)]
    metrics = []
    for name in names:
        cand = [mine[i].scores[name] for i in common]
        base = [theirs[i].scores[name] for i in common]
        test = paired_test(cand, base)
        significant = test["p_value"] is not None and test["p_value"] < alpha
        metrics.append(
            {
                "metric": name,
                "baseline": sum(base) / len(base) if base else None,
                "candidate": sum(cand) / len(cand) if cand else None,
                **test,
                "significant": significant,
                "regressed": significant and test["diff"] < 0,
            }
        )
    cases = [
        CaseDiff(mine[i].case, theirs[i], mine[i], mine[i].scores[QUALITY_SCORE] - theirs[i].scores[QUALITY_SCORE])
        for i in common
    ]
    cases.sort(key=lambda c: (c.diff, c.case.position))
    return Comparison(candidate, baseline, metrics, cases, alpha)


def latest_done_run(version: PromptVersion, dataset: Dataset) -> EvalRun | None:
    return (
        EvalRun.objects.filter(version=version, dataset=dataset, state=RunState.DONE)
        .order_by("-finished_at", "-id")
        .first()
    )


def headline_score(version: PromptVersion) -> float | None:
    """A version's evaluation score as its prompt file carries it (EVAL_SCORE): the quality score of its latest
    finished run on its prompt's gate dataset; None without one."""
    dataset = prompt_dataset(version.prompt)
    run = latest_done_run(version, dataset) if dataset is not None else None
    score = (run.metrics or {}).get(QUALITY_SCORE, {}).get("mean") if run is not None else None
    return None if score is None else float(score)


def version_comparison(version: PromptVersion) -> Comparison | None:
    """The latest finished run of `version` on its prompt's dataset against production's."""
    dataset = prompt_dataset(version.prompt)
    production = version.prompt.label_version(PRODUCTION)
    if dataset is None or production is None or production.pk == version.pk:
        return None
    candidate, baseline = latest_done_run(version, dataset), latest_done_run(production, dataset)
    if candidate is None or baseline is None:
        return None
    return compare(candidate, baseline, prompt_alpha(version.prompt))


def required_failures(run: EvalRun) -> dict[str, list[int]]:
    """Case positions failing each required scorer (score below its threshold)."""
    required = [s for s in parse_scorers(run.scorers) if s.required]
    failures: dict[str, list[int]] = {}
    if not required:
        return failures
    for position, scores in run.results.values_list("case__position", "scores"):
        for scorer in required:
            if not scorer.passes(scores[scorer.metric]):
                failures.setdefault(scorer.metric, []).append(position)
    return failures


def eval_gate(version: PromptVersion, policy: ReviewPolicy, known: Comparison | None = None) -> str | None:
    """The eval gate: None when the version's latest finished run on the prompt's dataset
    has no case failing a required scorer and no significant regression of the primary
    metric against production's latest run; else why not. `known` is a comparison the
    caller already made (reused when it is of the same two runs)."""
    dataset = prompt_dataset(version.prompt)
    if dataset is None:
        return "eval gate: no evaluation dataset is set for this prompt"
    run = latest_done_run(version, dataset)
    if run is None:
        pending = EvalRun.objects.filter(
            version=version, dataset=dataset, state__in=(RunState.QUEUED, RunState.RUNNING)
        ).exists()
        return f"eval gate: v{version.number} has no finished evaluation on '{dataset.name}'" + (
            " yet (one is running)" if pending else ""
        )
    for metric, positions in required_failures(run).items():
        shown = ", ".join(str(p) for p in sorted(positions)[:5])
        return (
            f"eval gate: required scorer '{metric}' failed on {len(positions)} "
            f"case{'s' if len(positions) != 1 else ''} (case {shown})"
        )
    production = version.prompt.label_version(PRODUCTION)
    if production is None or production.pk == version.pk:
        return None
    baseline = latest_done_run(production, dataset)
    if baseline is None:
        return (
            f"eval gate: production v{production.number} has no finished evaluation on '{dataset.name}' to compare with"
        )
    reusable = known is not None and known.candidate.pk == run.pk and known.baseline.pk == baseline.pk
    primary = (
        known if known is not None and reusable else compare(run, baseline, prompt_alpha(version.prompt))
    ).primary
    if primary["regressed"]:
        return (
            f"eval gate: {QUALITY_SCORE} regressed against production v{production.number} "
            f"({primary['baseline']:.3f} → {primary['candidate']:.3f}, p = {primary['p_value']:.3g})"
        )
    return None


def dataset_picker_context(prompt: Prompt, request: Any = None) -> dict[str, Any]:
    """The prompt's evaluation dataset and, for the roles that may change it, the picker's choices."""
    from promptreg import permissions

    dataset = prompt_dataset(prompt)
    user = getattr(request, "user", None)
    can_set = user is not None and permissions.can_review(user)  # the POLICY rule, as a role
    return {
        "dataset": dataset,
        "gate_applies": ReviewPolicy.for_type(prompt.prompt_type).requires_eval,
        "can_set_dataset": can_set,
        "datasets": list(Dataset.objects.order_by("name").values_list("pk", "name")) if can_set else [],
    }


def version_panel_context(version: PromptVersion, request: Any = None) -> dict[str, Any]:
    """What the reviewer's page shows: the prompt's dataset, the latest run, the score diff against production, the
    gate."""
    from promptreg import permissions

    picker = dataset_picker_context(version.prompt, request)
    dataset = picker["dataset"]
    policy = ReviewPolicy.for_type(version.prompt.prompt_type)
    user = getattr(request, "user", None)
    comparison = version_comparison(version)
    production = version.prompt.label_version(PRODUCTION)
    return {
        **picker,
        "has_baseline": production is not None and production.pk != version.pk,
        "latest_run": version.eval_runs.select_related("dataset").order_by("-created_at", "-id").first(),
        "comparison": comparison,
        "gate": eval_gate(version, policy, known=comparison),
        "can_run": user is not None and permissions.can_author(user) and dataset is not None,
    }
