"""Datasets and runs in a real browser: an upload with bad rows lists them, a good one imports; the run page's
progress bar polls with htmx while a run executes and the page shows the results once it is done."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from experiments.eval_datasets import prompt_set_dataset
from experiments.evaluation import evaluation_start
from experiments.models import Dataset, EvalRun, RunState
from experiments.runner import run_execute
from promptreg.models import MoveVia
from promptreg.services import Actor, version_publish
from tests.conftest import make_user
from tests.e2e.test_dashboard_story import sign_in
from tests.experiments.conftest import fake_llm  # noqa: F401  (the fake provider fixture)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(120),
]


def test_dataset_upload_and_a_live_run(browser_page, fake_llm, tmp_path):
    page = browser_page
    make_user("alice", "Author")
    sign_in(page, "alice")
    page.get_by_role("link", name="Datasets").click()
    page.get_by_label("Name").fill("capitals")
    page.get_by_label("Scorers").fill('["exact_match"]')
    page.get_by_role("button", name="Create dataset").click()
    page.get_by_role("link", name="Upload CSV / JSONL").click()

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"variables": {"query": "ok"}}\n{"variables": 3}\n')
    page.get_by_label("File").set_input_files(str(bad))
    page.get_by_role("button", name="Upload").click()
    page.get_by_text("1 bad row; nothing was imported.").wait_for()
    page.get_by_text("line 2: 'variables' must be a non-empty object").wait_for()
    dataset = Dataset.objects.get(name="capitals")
    assert dataset.active_cases().count() == 0

    good = tmp_path / "good.csv"
    good.write_text("query,expected\n" + "".join(f"q{i} [[answer:Paris]] [[sleep:0.05]],Paris\n" for i in range(40)))
    page.get_by_label("File").set_input_files(str(good))
    page.get_by_role("button", name="Upload").click()
    page.get_by_text("Imported 40 cases from good.csv.").wait_for()
    assert dataset.active_cases().count() == 40

    cli = Actor(via=MoveVia.CLI)
    version = version_publish(name="geo-answer", kind="text", body="{{ query }}", commit_message="c", actor=cli)
    prompt_set_dataset(prompt=version.prompt, dataset=dataset, actor=cli)
    run = evaluation_start(version=version, dataset=dataset, actor=cli)
    page.goto(f"/experiments/runs/{run.pk}/")
    assert page.locator("#run-progress[hx-trigger]").count() == 1

    worker = threading.Thread(target=lambda: (run_execute(run.pk), connection.close()))
    worker.start()
    # The poll swaps in progress, then the finished run reloads the page with its results.
    page.get_by_role("heading", name="Metrics").wait_for(timeout=30_000)
    worker.join(timeout=30)
    assert EvalRun.objects.get(pk=run.pk).state == RunState.DONE
    assert page.locator("#run-progress[hx-trigger]").count() == 0
    assert page.get_by_text("40 of 40 cases").is_visible()
