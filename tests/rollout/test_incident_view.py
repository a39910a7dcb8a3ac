"""The incident page: the rolled-back version's worst samples beside the previous version's with a similar input, and
"Add to dataset" (who may, what a case gets, errors that add nothing)."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from experiments.eval_datasets import dataset_create, prompt_set_dataset
from experiments.models import Case, Dataset, PlaygroundRun
from experiments.playground import run_execute as playground_execute
from rollout.models import RollbackIncident
from tests.conftest import make_user
from tests.experiments.conftest import fake_llm  # noqa: F401  (the fake provider fixture)
from tests.experiments.samples_helpers import make_sample
from tests.rollout.monitor_story import CLI
from tests.rollout.test_oncall import login, rolled_back  # noqa: F401  (v1 live again after v2 was rolled back)


@pytest.fixture
def incident(rolled_back):  # noqa: F811
    v1, v2 = rolled_back
    worst = [
        make_sample(v2, {"name": "Ann", "topic": "refund"}, "No.", {"quality_score": 0.05}),
        make_sample(v2, {"name": "Bob", "topic": "password reset"}, "Whatever", {"quality_score": 0.2}),
        make_sample(v2, {"name": "Cy", "topic": "shipping"}, "Ask someone else", {"quality_score": 0.3}),
    ]
    make_sample(v2, {"name": "Di", "topic": "fine"}, "Fine answer", {"quality_score": 0.9})
    make_sample(v2, {"name": "Ed"}, "latency only", {"latency_ms": 200})
    similar = [
        make_sample(v1, {"name": "Ann", "topic": "refund"}, "Refunds take 5 days, Ann.", {"quality_score": 0.9}),
        make_sample(v1, {"name": "Bob", "topic": "password"}, "Use the reset link, Bob.", {"quality_score": 0.8}),
        make_sample(v1, {"name": "Zed", "topic": "weather"}, "Sunny.", {"quality_score": 0.7}),
    ]
    gate = dataset_create(name="support-golden", scorers=["reference_f1"], cases=[], actor=CLI)
    prompt_set_dataset(prompt=v1.prompt, dataset=gate, actor=CLI)
    return RollbackIncident.objects.get(), worst, similar, gate


def page(client, user, incident):
    return login(client, user).get(f"/oncall/incidents/{incident.pk}/")


def test_worst_samples_beside_the_previous_versions_similar_ones(client, incident):
    found, worst, similar, _ = incident
    html = page(client, make_user("vera"), found).content.decode()  # any signed-in user reads it
    rows = html.split('<tr id="sample-')[1:]
    assert [r.split('"')[0] for r in rows[:3]] == [str(s.pk) for s in worst] and "Fine answer" in rows[3]
    assert "No." in rows[0] and "Refunds take 5 days, Ann." in rows[0] and "100% the same words" in rows[0]
    # {bob, password} of {bob, password, reset}
    assert "Use the reset link, Bob." in rows[1] and "67% the same words" in rows[1]
    assert "No sample of v1 with a similar input." in rows[2]
    assert len(rows) == 4 and "latency only" not in html  # a sample without the monitor's metric is left out
    assert "Add to dataset" not in html  # vera is no Author


def test_expected_is_prefilled_only_for_the_same_input(client, author, incident):
    found, worst, _, _ = incident
    html = page(client, author, found).content.decode()
    assert f'name="expected-{worst[0].pk}" rows="3">Refunds take 5 days, Ann.</textarea>' in html
    assert f'name="expected-{worst[1].pk}" rows="3"></textarea>' in html
    assert "support-golden (this prompt&#x27;s dataset)" in html


def add(client, user, incident, data):
    return login(client, user).post(f"/oncall/incidents/{incident.pk}/add-to-dataset/", data)


def test_a_reviewer_adds_three_samples_to_the_prompts_gate_dataset(client, author, incident):
    found, worst, _, gate = incident
    data = {
        "sample": [s.pk for s in worst],
        "dataset": str(gate.pk),
        f"expected-{worst[0].pk}": "Refunds take 5 days, Ann.",
        f"expected-{worst[1].pk}": "Use the reset link, Bob.",
        f"expected-{worst[2].pk}": "Shipping takes 2 days, Cy.",
    }
    refused = add(client, author, found, data)  # the gate dataset's cases are policy: not an author's alone
    assert refused.status_code == 200 and "needs the Reviewer role" in refused.content.decode()
    assert not Case.objects.exists()
    response = add(client, make_user("rose", "Author", "Reviewer"), found, data)
    assert response.status_code == 302 and response.url == f"/oncall/incidents/{found.pk}/"
    cases = list(gate.active_cases())
    assert [(c.variables, c.expected, c.tags) for c in cases] == [
        (worst[0].variables, "Refunds take 5 days, Ann.", ["from-sample", "v2"]),
        (worst[1].variables, "Use the reset link, Bob.", ["from-sample", "v2"]),
        (worst[2].variables, "Shipping takes 2 days, Cy.", ["from-sample", "v2"]),
    ]
    assert "Added 3 cases to &#x27;support-golden&#x27;." in client.get(response.url).content.decode()
    again = add(client, make_user("rhea", "Author", "Reviewer"), found, data)  # a second click adds nothing
    assert "Added 0 cases to &#x27;support-golden&#x27; (3 already there)." in client.get(again.url).content.decode()
    assert gate.active_cases().count() == 3


def test_another_prompts_gate_dataset_refuses_the_samples(client, incident, publish):
    found, worst, _, _ = incident
    theirs = dataset_create(name="billing-golden", scorers=["reference_f1"], cases=[], actor=CLI)
    prompt_set_dataset(prompt=publish(name="billing-system").prompt, dataset=theirs, actor=CLI)
    data = {"sample": [worst[0].pk], "dataset": str(theirs.pk), f"expected-{worst[0].pk}": "x"}
    response = add(client, make_user("rose", "Author", "Reviewer"), found, data)
    html = unescape(response.content.decode())
    assert response.status_code == 200 and f"sample {worst[0].pk} is of 'support-system'" in html
    assert not Case.objects.exists()


def test_a_sample_without_expected_adds_nothing_and_keeps_the_selection(client, author, incident):
    found, worst, _, gate = incident
    data = {"sample": [worst[0].pk, worst[1].pk], "dataset": str(gate.pk), f"expected-{worst[0].pk}": "Refunds"}
    response = add(client, author, found, data)
    html = response.content.decode()
    assert response.status_code == 200 and f"Give the expected answer of sample {worst[1].pk}" in html
    assert f'value="{worst[1].pk}" id="pick-{worst[1].pk}" aria-label="Select sample {worst[1].pk}" checked' in html
    assert f'name="expected-{worst[0].pk}" rows="3">Refunds</textarea>' in html
    assert not Case.objects.exists()


def test_a_new_dataset_grades_like_the_prompts(client, author, incident):
    found, worst, _, gate = incident
    data = {
        "sample": [worst[0].pk],
        "dataset": "new",
        "new_dataset": "refund-incidents",
        f"expected-{worst[0].pk}": "x",
    }
    assert add(client, author, found, data).status_code == 302
    created = Dataset.objects.get(name="refund-incidents")
    assert created.scorers == gate.scorers and created.active_cases().count() == 1

    data["new_dataset"] = "support-golden"  # taken: the service's error, shown on the form
    response = add(client, author, found, data)
    assert response.status_code == 200 and "A dataset named &#x27;support-golden&#x27; already exists." in (
        response.content.decode()
    )
    assert Case.objects.count() == 1


def test_only_shown_samples_and_only_authors(client, deployer, author, incident):
    found, worst, similar, gate = incident
    data = {"sample": [similar[2].pk], "dataset": str(gate.pk), f"expected-{similar[2].pk}": "x"}
    response = add(client, author, found, data)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    data = {"sample": [worst[0].pk], "dataset": str(gate.pk), f"expected-{worst[0].pk}": "x"}
    assert add(client, deployer, found, data).status_code == 403
    assert not Case.objects.exists()
    client.logout()
    assert client.get(f"/oncall/incidents/{found.pk}/").status_code == 302  # to the sign-in page


def test_the_banner_and_the_oncall_page_link_to_it(client, deployer, incident):
    found = incident[0]
    html = login(client, deployer).get("/oncall/").content.decode()
    assert html.count(f'href="/oncall/incidents/{found.pk}/"') == 2


def test_replay_runs_the_samples_variables_on_the_previous_version(client, author, incident, fake_llm):  # noqa: F811
    found, worst, _, _ = incident
    html = page(client, author, found).content.decode()
    form = html.split(f'<form id="replay-form-{worst[1].pk}"', 1)[1].split("</form>", 1)[0]
    assert 'action="/experiments/playground/compare/"' in form and 'name="versions" value="1"' in form
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    assert json.loads(unescape(fields.pop("variables"))) == worst[1].variables

    assert fields == {
        "csrfmiddlewaretoken": fields["csrfmiddlewaretoken"],
        "prompt": "support-system",
        "versions": "1",
        "result_id": f"replay-result-{worst[1].pk}",
    }

    fields["variables"] = json.dumps(worst[1].variables)
    response = client.post("/experiments/playground/compare/", fields, HTTP_HX_REQUEST="true")
    fragment = response.content.decode()
    # Each row's result has its own id, kept while it polls: several replays, no repeated id on the page.
    poll = f"/experiments/playground/{PlaygroundRun.objects.get().group}/?result_id=replay-result-{worst[1].pk}"
    assert response.status_code == 200 and f'<div id="replay-result-{worst[1].pk}"' in fragment
    assert f'hx-get="{poll}"' in fragment and 'id="playground-result"' not in fragment
    assert f'<div id="replay-result-{worst[1].pk}"' in client.get(poll, HTTP_HX_REQUEST="true").content.decode()
    run = PlaygroundRun.objects.get()
    assert (run.version.number, run.variables) == (1, worst[1].variables)
    assert playground_execute(run.pk) == "done" and PlaygroundRun.objects.get().output == "echo: Hello Bob #0"


def test_no_replay_for_readers(client, deployer, incident):
    html = page(client, deployer, incident[0]).content.decode()
    assert "Replay on v1" not in html and "replay-form-" not in html
