"""Executing an evaluation run in the worker: claim, heartbeat, evaluate cases in chunks, finish or fail.

A run is executed by one task (`experiments.tasks.evaluation_run`) that fans
the cases out to the provider on a thread pool and writes results in chunks.
It is idempotent: a worker claims the run with a conditional UPDATE
(`queued → running`), results are unique per (run, case) and inserted with
ON CONFLICT DO NOTHING, and a resumed run only does the cases that have no
result yet. A live worker refreshes `heartbeat_at`; a run whose heartbeat went
stale (its worker died) is taken over by the next worker that asks.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from experiments.llm import LLMClient, LLMConfig, ProviderError
from experiments.models.evaluation import (
    QUALITY_SCORE,
    Case,
    EvalResult,
    EvalRun,
    RunState,
)
from experiments.scorers import (
    JudgeReplyError,
    Scorer,
    ScorerSpecError,
    ScorerTimeout,
    judge_messages,
    parse_judge_reply,
    parse_scorers,
)
from experiments.stats import mean_ci
from promptreg.models import Prompt, PromptType, PromptVersion
from promptreg.templating import CompileError

log = logging.getLogger(__name__)


# Results are written (and cancellation checked) every few rounds of concurrent calls.
CHUNK_ROUNDS = 4
PROGRESS_SECONDS = 0.5  # while results arrive, they are written (and the progress bar moves) at least this often


def stale_before():
    return timezone.now() - timedelta(seconds=settings.EVAL_STALE_SECONDS)


def _claim(run_id: int, worker: str) -> bool:
    """Take a queued run, or one whose worker stopped beating; exactly one caller wins."""
    now = timezone.now()
    fields = {"state": RunState.RUNNING, "worker": worker, "heartbeat_at": now}
    if EvalRun.objects.filter(pk=run_id, state=RunState.QUEUED).update(started_at=now, **fields):
        return True
    return bool(
        EvalRun.objects.filter(pk=run_id, state=RunState.RUNNING, heartbeat_at__lt=stale_before()).update(**fields)
    )


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
        with (
            LLMClient(config) as client,
            ThreadPoolExecutor(config.concurrency, thread_name_prefix=f"eval-{run.pk}") as pool,
        ):
            evaluate = Evaluator(run.version, scorers, run.primary_metric, client, text_role(run.version.prompt))
            futures = [pool.submit(evaluate, case) for case in todo]
            try:
                for chunk in _as_they_complete(futures, config.concurrency * CHUNK_ROUNDS, PROGRESS_SECONDS):
                    if _save_chunk(run.pk, worker, chunk):
                        _cancel(futures)
                        return _finish(run.pk, worker, RunState.CANCELLED)
            except BaseException:
                _cancel(futures)
                raise
    finally:
        heartbeat.stop()
    return _finish(run.pk, worker, RunState.DONE)


def _as_they_complete(futures: list[Future], size: int, seconds: float) -> Iterator[list[EvalResult]]:
    """Results in the order they complete, in lists of at most `size`, and a list at least every `seconds` while
    results arrive: progress moves as the provider answers (one write per chunk, not per case)."""
    chunk: list[EvalResult] = []
    since = time.monotonic()
    for future in as_completed(futures):
        chunk.append(future.result())
        if len(chunk) >= size or time.monotonic() - since >= seconds:
            yield chunk
            chunk, since = [], time.monotonic()
    if chunk:
        yield chunk


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
        if not EvalRun.objects.filter(pk=run_id, worker=worker, state=RunState.RUNNING).update(
            state=state, finished_at=timezone.now()
        ):
            raise LostRun()
        store_metrics(run_id)
    return state


def store_metrics(run_id: int) -> None:
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
    return list(
        EvalRun.objects.filter(state=RunState.RUNNING, heartbeat_at__lt=stale_before()).values_list("pk", flat=True)
    )


def run_metrics(run: EvalRun) -> dict[str, dict[str, Any]]:
    """Per-metric mean with CI over the run's results, one entry per scorer plus `quality_score`."""
    names = [s.metric for s in parse_scorers(run.scorers)] + [QUALITY_SCORE]
    columns: dict[str, list[float]] = {name: [] for name in names}
    for scores in run.results.values_list("scores", flat=True):
        for name in names:
            columns[name].append(scores[name])
    return {name: mean_ci(values) for name, values in columns.items()}


MAX_SCORER_TIMEOUTS = 3  # per scorer and run
