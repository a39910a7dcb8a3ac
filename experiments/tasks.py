"""Celery tasks of the measuring app. Tasks take ids and call services."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from experiments import analysis, playground, runner, samples
from experiments.models import EvalRun, RunState
from promptreg import broker

# ---------------------------------------------------------------- evaluation runs


@shared_task(name="experiments.evaluation_run")
def evaluation_run(run_id: int) -> str:
    """Execute one evaluation run; duplicates and retries are harmless (see experiments.runner)."""
    return runner.run_execute(run_id)


@shared_task(name="experiments.evaluation_resume_stale")
def evaluation_resume_stale() -> list[int]:
    """Queue again the runs whose worker died; the run task takes them over."""
    run_ids = runner.runs_resume_stale()
    for run_id in run_ids:
        evaluation_run.delay(run_id)
    return run_ids


@shared_task(name="experiments.evaluation_requeue")
def evaluation_requeue() -> list[int]:
    """Beat: queue the runs whose task the broker did not take when they were created."""
    return broker.requeue(EvalRun.objects.filter(state=RunState.QUEUED), evaluation_run)


@worker_ready.connect
def _resume_on_start(sender, **kwargs) -> None:
    # A worker that starts after a crash picks up what the dead one left; the
    # countdown lets the dead worker's heartbeat go stale first.
    evaluation_resume_stale.apply_async(countdown=settings.EVAL_STALE_SECONDS + 1)


# ---------------------------------------------------------------- the playground


@shared_task(
    name="experiments.playground_run",
    soft_time_limit=int(settings.PLAYGROUND_TIMEOUT) + 5,
    time_limit=int(settings.PLAYGROUND_TIMEOUT) + 10,
)
def playground_run_task(run_id: int) -> str:
    """One version's run of a playground compare; a duplicate finds the run claimed and does nothing."""
    return playground.run_execute(run_id)


# ---------------------------------------------------------------- online experiments


@shared_task(name="experiments.experiments_snapshot_running")
def experiments_snapshot_running() -> int:
    """Beat: store a fresh analysis of every running experiment (the dashboard's time series)."""
    return analysis.experiments_snapshot_running()


@shared_task(name="experiments.experiment_snapshot")
def experiment_snapshot(experiment_id: int) -> int | None:
    """On demand (the dashboard's refresh button)."""
    snapshot = analysis.experiment_snapshot(experiment_id)
    return snapshot.pk if snapshot else None


# ---------------------------------------------------------------- production samples


@shared_task(name="experiments.samples_purge")
def samples_purge() -> int:
    """Beat: delete the samples past their retention."""
    return samples.samples_purge()
