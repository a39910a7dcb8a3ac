"""From an incident to a stronger dataset, in Chromium: bad scores with samples arrive through the API, the monitor
rolls production back, the on-call person opens the incident, sees the worst samples beside the previous version's,
replays one on the previous version, adds three samples to the prompt's dataset, and the next version's evaluation
runs on them."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect

from experiments.eval_datasets import dataset_create, prompt_set_dataset
from experiments.models import EvalRun, PlaygroundRun, PlaygroundState, RunState, Sample
from experiments.playground import run_execute as playground_execute
from experiments.runner import run_execute
from promptreg.models import ApiKey, ReviewPolicy
from promptreg.services import version_publish
from rollout.models import RollbackIncident
from rollout.monitoring import run_check
from tests.conftest import make_user
from tests.e2e.test_dashboard_story import sign_in
from tests.experiments.conftest import fake_llm  # noqa: F401  (the fake provider fixture)
from tests.rollout.monitor_story import CLI, activate, live, monitor

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.timeout(180),
]

# The fake provider answers what a query's marker says: a replay of these on any version gives the right answer.
QUESTIONS = {
    "refund": ("Where is my refund? [[answer:Refunds take 5 days]]", "Refunds take 5 days"),
    "password": ("I forgot my password [[answer:Use the reset link]]", "Use the reset link"),
    "parcel": ("Where is my parcel? [[answer:It ships in 2 days]]", "It ships in 2 days"),
    "invoice": ("Send me my invoice [[answer:Invoices are under Billing]]", "Invoices are under Billing"),
}


def wait_for(find, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while (found := find()) is None:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return found


def post_scores(base_url: str, secret: str, version: int, scored: list[tuple[str, str, float]]) -> None:
    """One score per (question key, output, quality), each with its sample, through the public API."""
    items = [
        {
            "id": str(uuid.uuid4()),
            "prompt": "support-system",
            "version": version,
            "metrics": {"quality_score": quality},
            "sample": {"variables": {"query": QUESTIONS[key][0]}, "output": output},
        }
        for key, output, quality in scored
    ]
    response = httpx.post(
        f"{base_url}/api/v1/scores", json={"scores": items}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200, response.text


def publish_answers(n: int):
    return [
        version_publish(
            name="support-system",
            kind="text",
            body=f"Answer the customer (#{i}): {{{{ query }}}}",
            commit_message="c",
            actor=CLI,
        )
        for i in range(n)
    ]


def incident_story(base_url: str):
    ReviewPolicy.objects.update(requires_review=False, requires_eval=False)
    _, secret = ApiKey.issue(name="app-server", scopes=["write"])
    golden = dataset_create(
        name="support-golden",
        scorers=["reference_f1"],
        cases=[{"variables": {"query": QUESTIONS["invoice"][0]}, "expected": QUESTIONS["invoice"][1]}],
        actor=CLI,
    )
    v1, _ = publish_answers(2)
    prompt_set_dataset(prompt=v1.prompt, dataset=golden, actor=CLI)
    activate(1)
    # v1's samples: no one asked it about a password.
    post_scores(base_url, secret, 1, [(k, answer, 0.9) for k, (_, answer) in QUESTIONS.items() if k != "password"])
    activate(2)
    # v2 answers rudely: its scores fall under the monitor's floor.
    bad = [("refund", "No.", 0.05), ("password", "Figure it out.", 0.1), ("parcel", "Not my problem.", 0.15)]
    post_scores(base_url, secret, 2, bad + [("invoice", "Billing.", 0.3)] * 20)
    run_check(monitor(consecutive_failures=1).id, now=timezone.now() + timedelta(seconds=1))
    assert live() == 1
    return golden


def test_incident_samples_replay_and_add_to_dataset(browser_page, live_server, fake_llm):  # noqa: F811
    golden = incident_story(live_server.url)
    incident = RollbackIncident.objects.get()
    worst = {s.output: s for s in Sample.objects.filter(version__number=2)}
    make_user("olga", "Deployer", "Author", "Reviewer")  # adding to a gate dataset is a policy change
    page = browser_page
    sign_in(page, "olga")
    page.goto("/oncall/")
    page.locator("#rollback-banner").get_by_role("link", name="Details").click()
    page.wait_for_url(f"**/oncall/incidents/{incident.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("rolled back automatically from v2 to v1")

    rows = page.locator("#incident-samples tbody tr")
    expect(rows.first).to_contain_text("No.")
    expect(rows.first).to_contain_text("Refunds take 5 days")  # v1 answered the same question well
    expect(rows.first).to_contain_text("100% the same words")
    assert [rows.nth(i).locator("td").nth(1).locator(".output").inner_text() for i in range(3)] == [
        "No.",
        "Figure it out.",
        "Not my problem.",
    ]

    picked = [worst["No."], worst["Figure it out."], worst["Not my problem."]]
    for sample in picked:
        page.get_by_label(f"Select sample {sample.pk}").check()
    # v1's answer to the same input is filled in; the password question v1 never saw is replayed on v1.
    expect(page.locator(f"#expected-{picked[0].pk}")).to_have_value("Refunds take 5 days")
    expect(page.locator(f"#expected-{picked[1].pk}")).to_have_value("")
    page.locator(f"#sample-{picked[1].pk}").get_by_role("button", name="Replay on v1").click()
    replay = wait_for(lambda: PlaygroundRun.objects.filter(state=PlaygroundState.QUEUED).first())
    assert (replay.version.number, replay.variables) == (1, picked[1].variables)
    assert playground_execute(replay.pk) == PlaygroundState.DONE  # the worker's part
    expect(page.locator(f"#replay-{picked[1].pk} .playground-output")).to_have_text("Use the reset link")
    page.get_by_role("button", name="Use v1's answer as expected").click()
    expect(page.locator(f"#expected-{picked[1].pk}")).to_have_value("Use the reset link")
    # The on-call person sharpens another answer by hand.
    page.locator(f"#expected-{picked[2].pk}").fill("It ships in 2 days; here is the tracking link")
    page.get_by_role("button", name="Add to dataset").click()
    expect(page.locator(".messages")).to_contain_text("Added 3 cases to 'support-golden'.")
    added = [c for c in golden.active_cases() if "from-sample" in c.tags]
    assert [(c.variables["query"], c.expected) for c in added] == [
        (QUESTIONS["refund"][0], "Refunds take 5 days"),
        (QUESTIONS["password"][0], "Use the reset link"),
        (QUESTIONS["parcel"][0], "It ships in 2 days; here is the tracking link"),
    ]

    # The next version is evaluated on the dataset, the three new cases included.
    (v3,) = publish_answers(1)
    page.goto(f"/experiments/prompts/support-system/-/v/{v3.number}/")
    page.get_by_role("button", name="Evaluate against production").click()
    page.wait_for_url("**/experiments/runs/*/")
    runs = list(EvalRun.objects.filter(dataset=golden).order_by("id"))
    worker = threading.Thread(target=lambda: ([run_execute(r.pk) for r in runs], connection.close()))
    worker.start()
    page.get_by_role("heading", name="Metrics").wait_for(timeout=30_000)
    worker.join(timeout=30)
    candidate = EvalRun.objects.get(version=v3)
    assert candidate.state == RunState.DONE and candidate.total == 4
    assert {c.pk for c in added} <= set(candidate.case_ids)
    assert candidate.results.filter(case__in=added).count() == 3
    expect(page.locator("body")).to_contain_text("Where is my refund?")
