"""Offline evaluation: datasets, runs on Celery workers, comparison with production, the eval gate.

A run is executed by one task (`experiments.tasks.evaluation_run`) that fans
the cases out to the provider on a thread pool and writes results in chunks.
It is idempotent: a worker claims the run with a conditional UPDATE
(`queued → running`), results are unique per (run, case) and inserted with
ON CONFLICT DO NOTHING, and a resumed run only does the cases that have no
result yet. A live worker refreshes `heartbeat_at`; a run whose heartbeat went
stale (its worker died) is taken over by the next worker that asks.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from scipy import stats

from experiments.datasets import CaseData, RowErrors, validate_cases
from experiments.llm import LLMClient, LLMConfig, ProviderError
from experiments.models.evaluation import (
    QUALITY_SCORE,
    Case,
    Dataset,
    EvalResult,
    EvalRun,
    PromptEvalSettings,
    RunState,
)
from experiments.scorers import (
    JudgeReplyError,
    Scorer,
    ScorerSpecError,
    ScorerTimeout,
    judge_messages,
    normalise_specs,
    parse_judge_reply,
    parse_scorers,
)
from promptreg import broker
from promptreg.exceptions import InvalidInput, NotFound
from promptreg.models import PRODUCTION, PolicyArea, Prompt, PromptType, PromptVersion, ReviewPolicy, Scope
from promptreg.services import POLICY, Actor, policy_change_record
from promptreg.templating import CompileError

log = logging.getLogger(__name__)

# Results are written (and cancellation checked) every few rounds of concurrent calls.
CHUNK_ROUNDS = 4
MAX_SCORER_TIMEOUTS = 3  # per scorer and run
DEFAULT_ALPHA = 0.05


# ---------------------------------------------------------------- datasets


def _check_scorers(specs: Any, primary_metric: str) -> list[dict[str, Any]]:
    try:
        normalised = normalise_specs(specs)
    except ScorerSpecError as exc:
        raise InvalidInput("Scorers: " + "; ".join(exc.problems), code="invalid_scorers", details={"problems": exc.problems}) from None
    metrics = [s.metric for s in parse_scorers(normalised)]
    if primary_metric and primary_metric not in metrics:
        raise InvalidInput(f"The primary metric '{primary_metric}' is not one of the scorers' metrics ({', '.join(metrics)}).", code="invalid_primary")
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
    dataset._change_reason = reason
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
        actor.require(POLICY, f"Changing the scorers of '{dataset.name}', the gate dataset of {', '.join(p.name for p in gated)}")
        for prompt in gated:
            policy_change_record(actor=actor, area=PolicyArea.DATASET_SCORERS, before=before, after=after, prompt=prompt, reason=f"dataset '{dataset.name}'")
    dataset.scorers = specs
    dataset.name, dataset.description, dataset.primary_metric = name, description, primary_metric
    _touch(dataset, f"edited by {actor.name}")
    return dataset


def _add_cases(dataset: Dataset, rows: list[CaseData]) -> None:
    # One save per case (not bulk_create) so each case gets its history record.
    start = (dataset.cases.order_by("-position").values_list("position", flat=True).first() or 0) + 1
    for i, row in enumerate(rows):
        Case.objects.create(dataset=dataset, position=start + i, variables=row.variables, expected=row.expected, tags=row.tags)


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
def case_save(*, dataset: Dataset, actor: Actor, variables: Any, expected: str = "", tags: list[str] | None = None, case: Case | None = None) -> Case:
    """Add a case, or edit one (history keeps the old values)."""
    actor.require(Scope.WRITE, "Editing cases")
    dataset = _lock_dataset(dataset)
    data = _one_case(variables, expected, tags or [])
    if case is None:
        _add_cases(dataset, [data])
        case = dataset.cases.order_by("-position").first()
    else:
        case = Case.objects.get(pk=case.pk, dataset=dataset, removed_at__isnull=True)
        case.variables, case.expected, case.tags = data.variables, data.expected, data.tags
        case._change_reason = f"edited by {actor.name}"
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
        case._change_reason = f"removed by {actor.name}"
        _remove(case)
        _touch(dataset, f"case {case.position} removed by {actor.name}")


@transaction.atomic
def prompt_set_dataset(*, prompt: Prompt, dataset: Dataset | None, actor: Actor, alpha: float | None = None) -> PromptEvalSettings:
    """Choose the dataset a prompt's versions are evaluated on (and gated by, for eval-gated types).

    A policy change, not the author's to make: Reviewers and Admins (API: the admin scope). It is
    recorded as a PolicyChange, so the prompt's audit trail shows who changed it and from what.
    """
    actor.require(POLICY, "Changing the evaluation dataset")
    if alpha is not None and not 0 < alpha < 0.5:
        raise InvalidInput("alpha must be between 0 and 0.5.", code="invalid_alpha")
    prompt = Prompt.objects.select_for_update().get(pk=prompt.pk)
    eval_settings, _ = PromptEvalSettings.objects.select_for_update().get_or_create(prompt=prompt)
    before = (eval_settings.dataset.name if eval_settings.dataset_id else None, eval_settings.alpha)
    eval_settings.dataset = dataset
    if alpha is not None:
        eval_settings.alpha = alpha
    after = (dataset.name if dataset else None, eval_settings.alpha)
    if before == after:
        return eval_settings
    eval_settings._change_reason = f"set by {actor.name}"
    eval_settings.save()
    policy_change_record(
        actor=actor, area=PolicyArea.GATE_DATASET, prompt=prompt,
        before=f"{before[0] or '(none)'} (alpha {before[1]:g})", after=f"{after[0] or '(none)'} (alpha {after[1]:g})",
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
    if not settings.LLM_BASE_URL:
        raise InvalidInput("No LLM provider is configured: set LLM_BASE_URL (and LLM_API_KEY, LLM_MODEL).", code="no_provider")
    cases = list(dataset.active_cases())
    if not cases:
        raise InvalidInput(f"The dataset '{dataset.name}' has no cases.", code="empty_dataset")
    problems = missing_variables(version, cases)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InvalidInput(
            f"{len(problems)} case{'s' if len(problems) != 1 else ''} of '{dataset.name}' cannot fill v{version.number}'s template: {shown}.",
            code="missing_variables",
            details={"problems": problems},
        )
    return [c.pk for c in cases]


def _queue(run: EvalRun) -> None:
    from experiments.tasks import evaluation_run

    broker.enqueue_on_commit(evaluation_run, run)


@transaction.atomic
def evaluation_start(*, version: PromptVersion, dataset: Dataset, actor: Actor, baseline: EvalRun | None = None) -> EvalRun:
    """Queue a run of `version` over the dataset's current cases; refuses (and writes nothing) when cases cannot compile."""
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
        baseline = _reusable_run(production, dataset) or evaluation_start(version=production, dataset=dataset, actor=actor)
    return evaluation_start(version=version, dataset=dataset, actor=actor, baseline=baseline)


def evaluation_alone_start(*, version: PromptVersion, actor: Actor) -> EvalRun:
    """Run a version on its prompt's dataset, without a baseline (e.g. nothing is live yet)."""
    dataset = prompt_dataset(version.prompt)
    if dataset is None:
        raise InvalidInput(f"'{version.prompt.name}' has no evaluation dataset; choose one first.", code="no_dataset")
    return evaluation_start(version=version, dataset=dataset, actor=actor)


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
            version=version, dataset=dataset, state=RunState.FAILED, error=exc.message, created_via=actor.via, finished_at=timezone.now()
        )


def evaluation_cancel(*, run: EvalRun, actor: Actor) -> EvalRun:
    """Cancel a queued run at once; a running one stops at its next chunk (or now, if its worker is gone)."""
    actor.require(Scope.WRITE, "Cancelling an evaluation")
    now = timezone.now()
    if EvalRun.objects.filter(pk=run.pk, state=RunState.QUEUED).update(state=RunState.CANCELLED, finished_at=now):
        return EvalRun.objects.get(pk=run.pk)
    if EvalRun.objects.filter(pk=run.pk, state=RunState.RUNNING, heartbeat_at__lt=_stale_before()).update(
        state=RunState.CANCELLED, finished_at=now, metrics=None
    ):
        _store_metrics(run.pk)
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


def _stale_before():
    return timezone.now() - timedelta(seconds=settings.EVAL_STALE_SECONDS)


def _claim(run_id: int, worker: str) -> bool:
    """Take a queued run, or one whose worker stopped beating; exactly one caller wins."""
    now = timezone.now()
    fields = {"state": RunState.RUNNING, "worker": worker, "heartbeat_at": now}
    if EvalRun.objects.filter(pk=run_id, state=RunState.QUEUED).update(started_at=now, **fields):
        return True
    return bool(EvalRun.objects.filter(pk=run_id, state=RunState.RUNNING, heartbeat_at__lt=_stale_before()).update(**fields))


class _Heartbeat(threading.Thread):
    """Keeps `heartbeat_at` fresh while the run's cases are in flight."""

    def __init__(self, run_id: int, worker: str):
        super().__init__(daemon=True, name=f"eval-heartbeat-{run_id}")
        self.run_id, self.worker = run_id, worker
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            # Beat several times per stale period, so a live worker never looks dead.
            while not self.stopped.wait(min(2.0, settings.EVAL_STALE_SECONDS / 4)):
                EvalRun.objects.filter(pk=self.run_id, worker=self.worker).update(heartbeat_at=timezone.now())
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


class LostRun(Exception):
    """Another worker took the run over, or it left the running state."""


@dataclass
class Evaluator:
    """Compiles, calls the provider and scores one case; safe to share between threads (no DB access).

    A scorer that runs out of time on a case scores it 0 with the reason in the result's `error`; after
    MAX_SCORER_TIMEOUTS such cases in a run it is not tried again on the rest, so a runaway pattern costs
    the worker a bounded amount of time per run, whatever the dataset's size.
    """

    version: PromptVersion
    scorers: list[Scorer]
    primary_metric: str
    client: LLMClient
    text_role: str = "user"
    timeouts: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def messages(self, case: Case) -> list[dict[str, Any]]:
        compiled = self.version.compile(**case.variables).prompt
        return [{"role": self.text_role, "content": compiled}] if isinstance(compiled, str) else compiled

    def judge(self, rubric: str, expected: str, output: str) -> float:
        reply = self.client.chat(judge_messages(rubric, expected, output), temperature=0).content
        return parse_judge_reply(reply)

    def __call__(self, case: Case) -> EvalResult:
        try:
            messages = self.messages(case)
        except CompileError as exc:
            raise CompileError(f"case {case.position} cannot fill the template: {exc}") from None
        answer = self.client.chat(messages)
        scores, problems = self.score(answer.content, case.expected)
        scores[QUALITY_SCORE] = quality(scores, self.primary_metric)
        return EvalResult(
            case=case,
            output=answer.content,
            scores=scores,
            error="; ".join(problems),
            latency_ms=answer.latency_ms,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
        )


    def score(self, output: str, expected: str) -> tuple[dict[str, float], list[str]]:
        scores, problems = {}, []
        for scorer in self.scorers:
            if self.timeouts[scorer.metric] >= MAX_SCORER_TIMEOUTS:
                scores[scorer.metric] = 0.0
                problems.append(f"{scorer.metric}: not run, it ran out of time on {MAX_SCORER_TIMEOUTS} earlier cases")
                continue
            try:
                scores[scorer.metric] = scorer.score(output, expected, self.judge)
            except ScorerTimeout as exc:
                with self._lock:
                    self.timeouts[scorer.metric] += 1
                scores[scorer.metric] = 0.0
                problems.append(f"{scorer.metric}: {exc}")
        return scores, problems


def quality(scores: dict[str, float], primary_metric: str) -> float:
    """`quality_score` of one case: the primary metric if the dataset names one, else the mean of its scorers."""
    if primary_metric:
        return scores[primary_metric]
    return sum(scores.values()) / len(scores)


def text_role(prompt: Prompt) -> str:
    """The role a text prompt is sent with: a System-type prompt is what an app sends as its system message."""
    return "system" if prompt.prompt_type == PromptType.SYSTEM else "user"


def run_execute(run_id: int) -> str:
    """The body of the run task. Returns what happened, for logs and tests."""
    worker = uuid.uuid4().hex
    if not _claim(run_id, worker):
        return "not claimed"
    try:
        return _execute(EvalRun.objects.select_related("version__prompt").get(pk=run_id), worker)
    except LostRun:
        return "lost"
    except (ProviderError, CompileError, JudgeReplyError, ScorerSpecError) as exc:
        _fail(run_id, worker, str(exc))
        return "failed"
    except Exception as exc:
        log.exception("evaluation run %s crashed", run_id)
        _fail(run_id, worker, f"Internal error: {exc.__class__.__name__}: {exc}")
        return "failed"


def _execute(run: EvalRun, worker: str) -> str:
    scorers = parse_scorers(run.scorers)
    done = set(EvalResult.objects.filter(run=run).values_list("case_id", flat=True))
    cases = Case.objects.in_bulk([i for i in run.case_ids if i not in done])
    todo = [cases[i] for i in run.case_ids if i in cases]
    config = LLMConfig.for_version(run.version.config)
    heartbeat = _Heartbeat(run.pk, worker)
    heartbeat.start()
    try:
        with LLMClient(config) as client, ThreadPoolExecutor(config.concurrency, thread_name_prefix=f"eval-{run.pk}") as pool:
            evaluate = Evaluator(run.version, scorers, run.primary_metric, client, text_role(run.version.prompt))
            futures = [pool.submit(evaluate, case) for case in todo]
            chunk_size = config.concurrency * CHUNK_ROUNDS
            try:
                for start in range(0, len(futures), chunk_size):
                    chunk = [f.result() for f in futures[start : start + chunk_size]]
                    if _save_chunk(run.pk, worker, chunk):
                        _cancel(futures)
                        return _finish(run.pk, worker, RunState.CANCELLED)
            except BaseException:
                _cancel(futures)
                raise
    finally:
        heartbeat.stop()
    return _finish(run.pk, worker, RunState.DONE)


def _cancel(futures: list[Future]) -> None:
    for future in futures:
        future.cancel()


def _save_chunk(run_id: int, worker: str, results: list[EvalResult]) -> bool:
    """Write one chunk of results; returns whether a cancel was requested."""
    with transaction.atomic():
        mine = EvalRun.objects.select_for_update().filter(pk=run_id, worker=worker, state=RunState.RUNNING).first()
        if mine is None:
            raise LostRun()
        for result in results:
            result.run_id = run_id
        EvalResult.objects.bulk_create(results, ignore_conflicts=True)
        mine.done = EvalResult.objects.filter(run_id=run_id).count()
        mine.heartbeat_at = timezone.now()
        mine.save(update_fields=["done", "heartbeat_at"])
        return mine.cancel_requested


def _finish(run_id: int, worker: str, state: str) -> str:
    with transaction.atomic():
        if not EvalRun.objects.filter(pk=run_id, worker=worker, state=RunState.RUNNING).update(state=state, finished_at=timezone.now()):
            raise LostRun()
        _store_metrics(run_id)
    return state


def _store_metrics(run_id: int) -> None:
    run = EvalRun.objects.get(pk=run_id)
    run.done = run.results.count()
    run.metrics = run_metrics(run)
    run.save(update_fields=["done", "metrics"])


def _fail(run_id: int, worker: str, reason: str) -> None:
    """Mark the run failed with the reason and drop its partial results: nothing half-written stays."""
    with transaction.atomic():
        if EvalRun.objects.filter(pk=run_id, worker=worker, state=RunState.RUNNING).update(
            state=RunState.FAILED, error=reason, finished_at=timezone.now(), done=0
        ):
            EvalResult.objects.filter(run_id=run_id).delete()


def runs_resume_stale() -> list[int]:
    """Ids of running runs whose worker stopped beating; the caller queues them again."""
    return list(EvalRun.objects.filter(state=RunState.RUNNING, heartbeat_at__lt=_stale_before()).values_list("pk", flat=True))


# ---------------------------------------------------------------- statistics and comparison


def mean_ci(values: list[float], confidence: float = 0.95) -> dict[str, Any]:
    """Mean and a two-sided confidence interval.

    0/1 scores: the Wilson score interval, (p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n),
    which stays inside [0, 1] and is not degenerate at 0 or 1. Other scores:
    Student's t, x̄ ± t(n−1)·s/√n, clipped to [0, 1]. With n < 2 the interval is unknown.
    """
    n = len(values)
    if n == 0:
        return {"mean": None, "ci": [None, None], "n": 0}
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "ci": [None, None], "n": n}
    if all(v in (0.0, 1.0) for v in values):
        z = stats.norm.ppf(0.5 + confidence / 2)
        centre = (mean + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(mean * (1 - mean) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        low, high = centre - half, centre + half
    else:
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
        low, high = mean - half, mean + half
    return {"mean": mean, "ci": [max(0.0, low), min(1.0, high)], "n": n}


def paired_test(candidate: list[float], baseline: list[float], confidence: float = 0.95) -> dict[str, Any]:
    """Paired t-test over cases: d_i = candidate_i − baseline_i, t = d̄ / (s_d/√n) with n−1 df.

    Returns the mean difference, its t interval and the two-sided p-value
    (scipy.stats.ttest_rel). When every difference is the same the test is
    degenerate: p = 1 if they are all zero, else 0.
    """
    n = len(candidate)
    diffs = [c - b for c, b in zip(candidate, baseline)]
    if n < 2:
        return {"diff": diffs[0] if diffs else None, "ci": [None, None], "p_value": None, "n": n}
    mean = sum(diffs) / n
    if all(abs(d - diffs[0]) < 1e-12 for d in diffs):
        return {"diff": mean, "ci": [mean, mean], "p_value": 1.0 if abs(mean) < 1e-12 else 0.0, "n": n}
    result = stats.ttest_rel(candidate, baseline)
    interval = result.confidence_interval(confidence)
    return {"diff": mean, "ci": [float(interval.low), float(interval.high)], "p_value": float(result.pvalue), "n": n}


def run_metrics(run: EvalRun) -> dict[str, dict[str, Any]]:
    """Per-metric mean with CI over the run's results, one entry per scorer plus `quality_score`."""
    names = [s.metric for s in parse_scorers(run.scorers)] + [QUALITY_SCORE]
    columns: dict[str, list[float]] = {name: [] for name in names}
    for scores in run.results.values_list("scores", flat=True):
        for name in names:
            columns[name].append(scores[name])
    return {name: mean_ci(values) for name, values in columns.items()}


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
    cases = [CaseDiff(mine[i].case, theirs[i], mine[i], mine[i].scores[QUALITY_SCORE] - theirs[i].scores[QUALITY_SCORE]) for i in common]
    cases.sort(key=lambda c: (c.diff, c.case.position))
    return Comparison(candidate, baseline, metrics, cases, alpha)


def latest_done_run(version: PromptVersion, dataset: Dataset) -> EvalRun | None:
    return EvalRun.objects.filter(version=version, dataset=dataset, state=RunState.DONE).order_by("-finished_at", "-id").first()


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
        pending = EvalRun.objects.filter(version=version, dataset=dataset, state__in=(RunState.QUEUED, RunState.RUNNING)).exists()
        return f"eval gate: v{version.number} has no finished evaluation on '{dataset.name}'" + (" yet (one is running)" if pending else "")
    for metric, positions in required_failures(run).items():
        shown = ", ".join(str(p) for p in sorted(positions)[:5])
        return f"eval gate: required scorer '{metric}' failed on {len(positions)} case{'s' if len(positions) != 1 else ''} (case {shown})"
    production = version.prompt.label_version(PRODUCTION)
    if production is None or production.pk == version.pk:
        return None
    baseline = latest_done_run(production, dataset)
    if baseline is None:
        return f"eval gate: production v{production.number} has no finished evaluation on '{dataset.name}' to compare with"
    reusable = known is not None and known.candidate.pk == run.pk and known.baseline.pk == baseline.pk
    primary = (known if reusable else compare(run, baseline, prompt_alpha(version.prompt))).primary
    if primary["regressed"]:
        return (
            f"eval gate: {QUALITY_SCORE} regressed against production v{production.number} "
            f"({primary['baseline']:.3f} → {primary['candidate']:.3f}, p = {primary['p_value']:.3g})"
        )
    return None


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
    """What the reviewer's page shows: the prompt's dataset, the latest run, the score diff against production, the gate."""
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


def dataset_history(dataset: Dataset) -> list[dict[str, Any]]:
    """Every recorded change to the dataset and its cases, newest first, with what changed."""
    events = []
    records = list(dataset.history.select_related("history_user")) + list(Case.history.filter(dataset_id=dataset.pk).select_related("history_user"))
    for record in records:
        previous = record.prev_record
        changes = [] if previous is None else [f"{c.field}: {c.old!r} → {c.new!r}" for c in record.diff_against(previous).changes]
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
