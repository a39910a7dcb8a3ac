"""Evaluation runs executed in-process against the fake provider (the worker itself is tested in test_eval_worker)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from experiments.evaluation import evaluation_cancel, evaluation_start
from experiments.models import Case, EvalResult, EvalRun, RunState
from experiments.runner import run_execute, runs_resume_stale
from promptreg.exceptions import InvalidInput
from tests.experiments.conftest import SERVER, make_dataset


def start(version, dataset):
    return evaluation_start(version=version, dataset=dataset, actor=SERVER)


def test_run_records_outputs_scores_latency_tokens_and_metrics(fake_llm, version, dataset):
    run = start(version, dataset)
    assert run.state == RunState.QUEUED and run.total == 4

    assert run_execute(run.pk) == RunState.DONE

    run.refresh_from_db()
    assert run.state == RunState.DONE and run.done == 4 and run.finished_at is not None
    results = list(run.results.order_by("case__position"))
    assert [r.output for r in results] == ["Paris", "Rome", "Berlin", "Madrid"]
    assert all(r.scores == {"exact_match": 1.0, "reference_f1": 1.0, "quality_score": 1.0} for r in results)
    assert all(r.latency_ms > 0 and r.prompt_tokens and r.completion_tokens == 1 for r in results)
    assert run.metrics["exact_match"]["mean"] == 1.0 and run.metrics["exact_match"]["n"] == 4
    lo, hi = run.metrics["quality_score"]["ci"]
    assert 0 < lo < 1 and hi == 1.0
    # The provider saw the compiled template, the configured model and the key.
    first = fake_llm.requests[0]
    assert first["auth"] == "Bearer sk-test"
    assert b"Answer briefly: capital" in first["body"] and b'"fake-model"' in first["body"]


def test_quality_score_is_mean_of_scorers_or_the_named_primary(fake_llm, publish):
    both = make_dataset(
        "mixed",
        answers=["Paris", "Paris town"],
        scorers=["exact_match", "contains_any" and {"name": "contains_any", "keywords": ["paris"]}],
    )
    primary = make_dataset(
        "primary",
        answers=["Paris", "Paris town"],
        scorers=["exact_match", {"name": "contains_any", "keywords": ["paris"]}],
        primary_metric="exact_match",
    )
    v = publish(name="geo-answer", body="{{ query }}")
    for ds, expected in ((both, [1.0, 0.5]), (primary, [1.0, 0.0])):
        run = start(v, ds)
        run_execute(run.pk)
        assert [r.scores["quality_score"] for r in run.results.order_by("case__position")] == expected


def test_missing_variables_refuse_the_run_and_write_nothing(fake_llm, publish, dataset):
    v = publish(name="geo-answer", body="{{ query }} in {{ language }}")
    with pytest.raises(InvalidInput) as exc:
        start(v, dataset)
    assert "4 cases of 'capitals' cannot fill v1's template" in exc.value.message
    assert "case 1 lacks language" in exc.value.message
    assert not EvalRun.objects.exists()


def test_provider_down_fails_the_run_with_the_reason_and_keeps_no_results(settings, version, dataset):
    settings.LLM_BASE_URL = "http://ops:s3cret@127.0.0.1:9/v1?key=k3y"  # nothing listens on the discard port
    settings.LLM_BACKOFF = 0.01
    run = start(version, dataset)
    assert run_execute(run.pk) == "failed"
    run.refresh_from_db()
    assert run.state == RunState.FAILED
    assert "The LLM provider at http://127.0.0.1:9 failed 4 times; last error: could not connect" in run.error
    assert "s3cret" not in run.error and "k3y" not in run.error  # authors read it: only scheme://host:port
    assert not EvalResult.objects.filter(run=run).exists() and run.done == 0


@pytest.mark.parametrize(
    "marker, reason",
    [("[[status:500]]", "HTTP 500"), ("[[malformed]]", "malformed response"), ("[[hang]]", "timed out")],
)
def test_provider_errors_fail_the_run_with_a_clear_reason(fake_llm, settings, publish, marker, reason):
    settings.LLM_TIMEOUT = 0.3
    settings.LLM_MAX_RETRIES = 1
    fake_llm.hang_seconds = 1.0
    ds = make_dataset("bad", answers=["Paris", f"x {marker}"])
    v = publish(name="geo-answer", body="{{ query }}")
    run = start(v, ds)
    run_execute(run.pk)
    run.refresh_from_db()
    assert run.state == RunState.FAILED and reason in run.error
    assert run.results.count() == 0


def test_rate_limited_calls_are_retried_and_succeed(fake_llm, publish):
    ds = make_dataset("flaky", answers=["[[flaky:429:2]]"])
    v = publish(name="geo-answer", body="{{ query }}")
    run = start(v, ds)
    assert run_execute(run.pk) == RunState.DONE
    assert len(fake_llm.requests) == 3
    assert run.results.get().output == "echo: capital 0 [[flaky:429:2]]"


def test_a_duplicated_task_does_nothing(fake_llm, version, dataset):
    run = start(version, dataset)
    assert run_execute(run.pk) == RunState.DONE
    assert run_execute(run.pk) == "not claimed"
    assert run.results.count() == 4 and len(fake_llm.requests) == 4


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_duplicates_claim_once(fake_llm, publish):
    ds = make_dataset("many", answers=["[[sleep:0.02]]"] * 12)
    v = publish(name="geo-answer", body="{{ query }}")
    run = start(v, ds)
    outcomes = []

    def work():
        outcomes.append(run_execute(run.pk))
        connection.close()

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == [RunState.DONE, "not claimed", "not claimed"]
    assert EvalResult.objects.filter(run=run).count() == 12 and len(fake_llm.requests) == 12


def test_resume_after_a_dead_worker_only_does_the_missing_cases(fake_llm, version, dataset, settings):
    run = start(version, dataset)
    # A worker claimed it, wrote two results, then died (its heartbeat stopped).
    first_two = list(Case.objects.filter(pk__in=run.case_ids).order_by("position")[:2])
    EvalResult.objects.bulk_create(
        [
            EvalResult(
                run=run, case=c, output="old", scores={"exact_match": 0.0, "reference_f1": 0.0, "quality_score": 0.0}
            )
            for c in first_two
        ]
    )
    long_ago = timezone.now() - timedelta(seconds=settings.EVAL_STALE_SECONDS + 5)
    EvalRun.objects.filter(pk=run.pk).update(
        state=RunState.RUNNING, worker="dead", started_at=long_ago, heartbeat_at=long_ago, done=2
    )
    assert runs_resume_stale() == [run.pk]

    assert run_execute(run.pk) == RunState.DONE

    run.refresh_from_db()
    assert run.results.count() == 4 and len(fake_llm.requests) == 2
    assert sorted(run.results.values_list("output", flat=True)) == ["Berlin", "Madrid", "old", "old"]
    assert runs_resume_stale() == []


def test_a_live_worker_is_not_taken_over(fake_llm, version, dataset):
    run = start(version, dataset)
    EvalRun.objects.filter(pk=run.pk).update(state=RunState.RUNNING, worker="alive", heartbeat_at=timezone.now())
    assert run_execute(run.pk) == "not claimed"
    assert runs_resume_stale() == []


def test_cancel_a_queued_run(version, dataset, fake_llm):
    run = start(version, dataset)
    run = evaluation_cancel(run=run, actor=SERVER)
    assert run.state == RunState.CANCELLED
    assert run_execute(run.pk) == "not claimed" and not fake_llm.requests
    with pytest.raises(InvalidInput, match="already cancelled"):
        evaluation_cancel(run=run, actor=SERVER)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_cancel_a_running_run_stops_at_the_next_chunk(fake_llm, publish, settings):
    settings.LLM_CONCURRENCY = 2
    ds = make_dataset("slow", answers=["[[sleep:0.02]]"] * 200)
    v = publish(name="geo-answer", body="{{ query }}")
    run = start(v, ds)
    worker = threading.Thread(target=lambda: (run_execute(run.pk), connection.close()))
    worker.start()
    deadline = timezone.now() + timedelta(seconds=20)
    while EvalRun.objects.get(pk=run.pk).done == 0 and timezone.now() < deadline:
        threading.Event().wait(0.05)
    evaluation_cancel(run=EvalRun.objects.get(pk=run.pk), actor=SERVER)
    worker.join(timeout=30)
    run.refresh_from_db()
    assert run.state == RunState.CANCELLED
    assert 0 < run.done < 200 and run.results.count() == run.done
    assert run.metrics["quality_score"]["n"] == run.done


def test_a_system_prompt_is_sent_as_the_system_message(fake_llm, publish, dataset):
    system = publish(name="geo-system", body="You answer about {{ query }}", prompt_type="system")
    extraction = publish(name="geo-extraction", body="Extract: {{ query }}", prompt_type="extraction")
    for version, role in ((system, "system"), (extraction, "user")):
        fake_llm.requests.clear()
        run_execute(start(version, dataset).pk)
        sent = [json.loads(r["body"])["messages"] for r in fake_llm.requests]
        assert len(sent) == 4 and all(m == [{"role": role, "content": m[0]["content"]}] for m in sent)


def test_progress_moves_as_results_arrive(fake_llm, publish, monkeypatch):
    """Results are written as they complete (at least every PROGRESS_SECONDS), not only when a chunk of
    concurrency × CHUNK_ROUNDS cases is full: with 12 cases, 4 at a time, the bar moves before 12/12."""
    from experiments import runner

    ds = make_dataset("waves", answers=["[[sleep:0.25]]"] * 12)
    v = publish(name="wave-answer", body="Answer: {{ query }}", prompt_type="extraction")
    run = evaluation_start(version=v, dataset=ds, actor=SERVER)
    seen: list[int] = []
    save = runner._save_chunk

    def spy(run_id, worker, results):
        cancelled = save(run_id, worker, results)
        seen.append(EvalRun.objects.get(pk=run_id).done)
        return cancelled

    monkeypatch.setattr(runner, "PROGRESS_SECONDS", 0.1)
    monkeypatch.setattr(runner, "_save_chunk", spy)
    assert run_execute(run.pk) == RunState.DONE
    assert len(seen) >= 3 and seen == sorted(set(seen)) and seen[-1] == 12, seen
    assert 0 < seen[0] < 12
