"""A regex scorer cannot stall the worker: a runaway match fails its case with a message within the budget."""

from __future__ import annotations

import time

from experiments.evaluation import evaluation_start
from experiments.models import Dataset, RunState
from experiments.runner import run_execute
from experiments.scorers import ScorerTimeout, parse_scorers
from tests.experiments.conftest import SERVER, fake_llm, make_dataset  # noqa: F401  (a fixture)
from tests.rollout.conftest import api_as  # noqa: F401  (a fixture)

RUNAWAY = "(a|aa)+$"  # exponential backtracking in the `regex` engine too
NESTED = "^(a+)+$"  # the classic; `regex` answers it at once, Python's `re` takes minutes on "a" * 40 + "!"


def test_a_runaway_pattern_fails_each_case_with_a_message_and_the_run_finishes_within_the_budget(
    fake_llm, publish, settings
):
    settings.SCORER_REGEX_TIMEOUT = 0.1
    scorers = [
        {"name": "regex", "pattern": RUNAWAY, "metric": "runaway"},
        {"name": "regex", "pattern": NESTED, "metric": "nested"},
        "exact_match",
    ]
    dataset = make_dataset("abuse", answers=["a" * 40 + "!"] * 5, scorers=scorers)
    version = publish(name="abuse-answer", body="{{ query }}")
    run = evaluation_start(version=version, dataset=dataset, actor=SERVER)

    started = time.monotonic()
    assert run_execute(run.pk) == RunState.DONE
    assert time.monotonic() - started < 2.5  # 3 timed-out cases of 0.1 s CPU each, then the scorer is skipped

    results = list(run.results.order_by("case__position"))
    assert len(results) == 5 and all(r.output == "a" * 40 + "!" for r in results)
    assert all(r.scores["runaway"] == 0.0 and r.scores["nested"] == 0.0 for r in results)
    timed_out = [r for r in results if "gave up after 0.1 s of matching" in r.error]
    skipped = [r for r in results if "not run, it ran out of time on 3 earlier cases" in r.error]
    assert len(timed_out) + len(skipped) == 5 and len(timed_out) >= 3
    assert all(r.error.startswith("runaway: ") and "nested" not in r.error for r in results)


def test_one_runaway_match_gives_up_within_a_second(settings):
    settings.SCORER_REGEX_TIMEOUT = 0.1
    (scorer,) = parse_scorers([{"name": "regex", "pattern": RUNAWAY}])
    started = time.monotonic()
    try:
        scorer.score("a" * 60 + "!", "")
    except ScorerTimeout as exc:
        assert "gave up after 0.1 s" in str(exc)
    else:
        raise AssertionError("the runaway pattern matched or finished")
    assert time.monotonic() - started < 1.0


def test_a_pattern_too_costly_to_compile_is_refused_at_save(api_as):
    started = time.monotonic()
    response = api_as("write").post(
        "/api/v1/datasets",
        {
            "name": "bomb",
            "scorers": [{"name": "regex", "pattern": "(a{65535}){65535}"}],
            "cases": [{"variables": {}, "expected": "a"}],
        },
        content_type="application/json",
    )
    assert response.status_code == 400 and "repeats too much" in response.json()["error"]["message"]
    assert time.monotonic() - started < 1.0
    assert not Dataset.objects.exists()
