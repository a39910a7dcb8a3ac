"""Concurrent batches for the same sessions keep the running sums exact (checked against a rebuild)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from experiments.models import Experiment, ExperimentState, ExperimentTotal
from experiments.scores import experiment_totals_rebuild, scores_ingest
from promptreg.models import MoveVia
from promptreg.services import Actor

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.timeout(120)]


def test_concurrent_overlapping_batches_and_retries(publish):
    v1, v2 = publish(), publish(body="Hi {{ name }}")
    experiment = Experiment.objects.create(
        prompt=v1.prompt,
        control_version=v1,
        treatment_version=v2,
        traffic_fraction=0.5,
        primary_metric="quality_score",
        state=ExperimentState.RUNNING,
    )
    cli = Actor(via=MoveVia.CLI)
    sessions = [f"s{i}" for i in range(60)]

    def batch(worker: int) -> list[dict]:
        # every worker writes to every session, with ids of its own
        return [
            {
                "id": f"w{worker}-{s}",
                "prompt": v1.prompt.name,
                "session_id": s,
                "experiment": experiment.pk,
                "version": 2 if experiment.assign(s) == "treatment" else 1,
                "metrics": {"quality_score": (worker + i) % 10 / 10},
            }
            for i, s in enumerate(sessions)
        ]

    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for _ in range(3):  # the second and third posts are client retries: no-ops
                scores_ingest(scores=batch(worker), actor=cli)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors

    def totals():
        return {
            (t.variant, t.sessions, t.scores, round(t.sum, 9), round(t.sum_sq, 9))
            for t in ExperimentTotal.objects.filter(experiment=experiment)
        }

    incremental = totals()
    assert sum(row[2] for row in incremental) == 4 * 60  # retries stored nothing twice
    assert sum(row[1] for row in incremental) == 60
    experiment_totals_rebuild(experiment)
    assert totals() == incremental
