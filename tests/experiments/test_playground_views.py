"""The playground on the dashboard: start a compare, the worker's part, polling, the side-by-side word diff, the
draft of the authoring form, the sentences for errors and for a worker that never came, and who may do what."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from experiments.models import PlaygroundRun, PlaygroundState
from experiments.playground import playground_run, run_execute
from promptreg.models import LabelMove
from promptreg.services import label_move
from tests.experiments.conftest import SERVER
from tests.experiments.test_eval_views import login

COMPARE = reverse("experiments:playground-compare")


@pytest.fixture
def versions(publish):
    v1 = publish(name="support-answer", body="Say [[answer:{{ greeting }} world]]", prompt_type="extraction")
    v2 = publish(name="support-answer", body="Say [[answer:{{ greeting }} brave new world]]")
    label_move(name="support-answer", label="production", version=1, actor=SERVER, reason="first", override=True)
    return v1, v2


def run_all() -> None:
    for pk in PlaygroundRun.objects.filter(state=PlaygroundState.QUEUED).values_list("pk", flat=True):
        run_execute(pk)


def test_compare_two_versions_side_by_side_with_a_word_diff(client, author, fake_llm, versions):
    login(client, author)
    moves = LabelMove.objects.count()
    response = client.post(
        COMPARE,
        {"prompt": "support-answer", "versions": ["2", "1"], "sample-greeting": "Hello"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    runs = list(PlaygroundRun.objects.order_by("position"))
    assert [(r.version.number, r.state, r.variables) for r in runs] == [
        (2, "queued", {"greeting": "Hello"}),
        (1, "queued", {"greeting": "Hello"}),
    ]
    page = response.content.decode()
    assert 'hx-trigger="every 1s"' in page and "Waiting for a worker" in page

    run_all()

    response = client.get(reverse("experiments:playground-result", args=[runs[0].group]), HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert "hx-trigger" not in page  # finished: polling stops
    assert "<del>brave new </del>" in page  # v2 (the baseline) against v1
    assert '<span class="badge live">production</span>' in page
    assert "fake-model" in page and " ms" in page and "tokens" in page
    runs = list(PlaygroundRun.objects.order_by("position"))
    assert [r.output for r in runs] == ["Hello brave new world", "Hello world"]
    assert all(r.state == "done" and r.latency_ms and r.output_tokens for r in runs)
    assert LabelMove.objects.count() == moves  # the playground never moves a label


def test_without_htmx_the_compare_redirects_to_its_result_page(client, author, fake_llm, versions, settings):
    settings.LLM_PRICES = {"fake-model": {"input": 1000.0, "output": 2000.0}}
    login(client, author)
    response = client.post(
        COMPARE, {"prompt": "support-answer", "versions": "1", "variables": json.dumps({"greeting": "Hi"})}
    )
    run = PlaygroundRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/experiments/playground/{run.group}/"
    run_all()
    page = client.get(response["Location"]).content.decode()
    assert "<h1>Playground</h1>" in page and "Hi world" in page
    # "Say [[answer:Hi world]]" is 3 words in, "Hi world" 2 out: (3 × 1000 + 2 × 2000) / 10⁶ dollars.
    assert "3 in / 2 out tokens · $0.007000" in page
    bad = client.post(COMPARE, {"prompt": "support-answer", "versions": "7"})
    assert bad.status_code == 400 and "<h1>Playground</h1>" in bad.content.decode()
    assert "has no version 7." in bad.content.decode() and PlaygroundRun.objects.count() == 1


def test_the_authoring_forms_draft_runs_with_its_own_settings(client, author, fake_llm, versions):
    login(client, author)
    response = client.post(
        COMPARE,
        {
            "prompt": "support-answer",
            "draft": "1",
            "kind": "chat",
            "msg-0-type": "message",
            "msg-0-role": "system",
            "msg-0-content": "Be brief.",
            "msg-1-type": "message",
            "msg-1-role": "user",
            "msg-1-content": "{{ greeting }}?",
            "model": "draft-model",
            "temperature": "0.2",
            "versions": "1",
            "sample-greeting": "Bonjour",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    run_all()
    draft, v1 = PlaygroundRun.objects.order_by("position")
    assert draft.version is None and draft.output == "echo: Bonjour?" and draft.model == "draft-model"
    assert v1.version.number == 1 and v1.model == "fake-model"  # the versions keep their own config
    sent = [json.loads(r["body"]) for r in fake_llm.requests]
    assert sent[0]["model"] == "draft-model" and sent[0]["temperature"] == 0.2 and "temperature" not in sent[1]
    assert sent[0]["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Bonjour?"}]


def test_a_version_page_override_applies_to_every_run(client, author, fake_llm, versions):
    login(client, author)
    client.post(
        COMPARE,
        {"prompt": "support-answer", "versions": ["1", "2"], "sample-greeting": "Yo", "max_tokens": "7"},
        HTTP_HX_REQUEST="true",
    )
    run_all()
    assert [json.loads(r["body"])["max_tokens"] for r in fake_llm.requests] == [7, 7]


def test_provider_errors_are_shown_as_sentences(client, author, fake_llm, publish):
    publish(name="plain-answer", body="{{ question }}")
    login(client, author)
    client.post(
        COMPARE,
        {"prompt": "plain-answer", "versions": "1", "sample-question": "[[status:401]]"},
        HTTP_HX_REQUEST="true",
    )
    run_all()
    run = PlaygroundRun.objects.get()
    page = client.get(reverse("experiments:playground-result", args=[run.group]), HTTP_HX_REQUEST="true")
    assert run.state == "failed" and "The LLM provider refused the request: HTTP 401" in run.error
    assert "The LLM provider refused the request: HTTP 401" in page.content.decode()


def test_a_run_no_worker_picks_up_fails_with_a_sentence(client, author, fake_llm, versions, settings):
    login(client, author)
    client.post(COMPARE, {"prompt": "support-answer", "versions": "1", "sample-greeting": "x"}, HTTP_HX_REQUEST="true")
    run = PlaygroundRun.objects.get()
    url = reverse("experiments:playground-result", args=[run.group])
    assert "hx-trigger" in client.get(url, HTTP_HX_REQUEST="true").content.decode()
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.PLAYGROUND_PICKUP_SECONDS + 1)):
        page = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "No worker picked up the run within 15 s — is the worker running?" in page and "hx-trigger" not in page
    assert run_execute(run.pk) == "not queued" and fake_llm.requests == []  # a late worker does nothing
    assert PlaygroundRun.objects.get().state == "failed"


@pytest.mark.parametrize(
    "data, sentence",
    [
        ({"versions": "9", "sample-greeting": "x"}, "&#x27;support-answer&#x27; has no version 9."),
        ({"sample-greeting": "x"}, "Choose at least one version to run."),
        ({"versions": "1", "variables": "[1]"}, "The sample values must be a JSON object"),
        ({"versions": "1", "temperature": "9"}, "Temperature: Ensure this value is less than or equal to 2."),
        ({"versions": "1", "extra_config": '{"seed": 1e300}'}, "config: &#x27;seed&#x27; must be a whole number"),
        ({"draft": "1", "text": "Hi", "extra_config": '{"top_p": 7}'}, "config: &#x27;top_p&#x27; must be a number"),
        ({"versions": ["1", "2", "1", "2", "1"]}, ""),
    ],
)
def test_bad_input_says_what_and_starts_nothing(client, author, fake_llm, versions, data, sentence):
    login(client, author)
    response = client.post(COMPARE, {"prompt": "support-answer", **data}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and sentence in response.content.decode()
    assert PlaygroundRun.objects.count() == (2 if not sentence else 0)  # repeated versions run once each


def test_only_authors_run_and_only_the_creator_and_admins_see_a_result(
    client, author, second_author, admin_user, outsider, fake_llm, versions
):
    login(client, outsider)
    data = {"prompt": "support-answer", "versions": "1", "sample-greeting": "Hi"}
    refused = client.post(COMPARE, data)
    assert refused.status_code == 403
    assert "Running the playground needs the Author role." in refused.content.decode()
    assert PlaygroundRun.objects.count() == 0
    login(client, author)
    client.post(COMPARE, data)
    run_all()
    run = PlaygroundRun.objects.get()
    url = reverse("experiments:playground-result", args=[run.group])
    login(client, second_author)
    response = client.get(url)
    assert response.status_code == 404 and "No such playground run" in response.content.decode()
    assert "Hi world" not in response.content.decode()
    login(client, admin_user)  # support: an Admin opening the link alice sent
    response = client.get(url)
    assert response.status_code == 200 and "Hi world" in response.content.decode()


def test_no_provider_says_where_an_admin_sets_it_and_queues_nothing(client, author, versions, settings):
    settings.LLM_BASE_URL = ""
    login(client, author)
    data = {"prompt": "support-answer", "versions": "1", "sample-greeting": "x"}
    fragment = client.post(COMPARE, data, HTTP_HX_REQUEST="true").content.decode()
    assert "No LLM provider is configured: an Admin sets it on the Evaluation provider page" in fragment
    page = client.post(COMPARE, data)
    assert page.status_code == 503 and "/experiments/provider/" in page.content.decode()
    assert PlaygroundRun.objects.count() == 0


def test_a_run_error_shows_only_where_the_provider_is(client, author, versions, settings):
    settings.LLM_BASE_URL = "http://alice:s3cret@127.0.0.1:9/v1?key=k3y"
    login(client, author)
    client.post(COMPARE, {"prompt": "support-answer", "versions": "1", "sample-greeting": "x"}, HTTP_HX_REQUEST="true")
    run_all()
    run = PlaygroundRun.objects.get()
    page = client.get(reverse("experiments:playground-result", args=[run.group])).content.decode()
    assert "The LLM provider at http://127.0.0.1:9 failed: could not connect" in page
    assert "s3cret" not in page and "k3y" not in page


def test_a_variable_that_is_not_text_fails_the_run_naming_it(client, author, fake_llm, versions):
    login(client, author)
    data = {"prompt": "support-answer", "versions": "1", "variables": '{"greeting": {"x": [1, 2]}}'}
    client.post(COMPARE, data, HTTP_HX_REQUEST="true")
    run_all()
    run = PlaygroundRun.objects.get()
    assert run.state == "failed" and "variable 'greeting' must be text, a number or true/false" in run.error
    assert fake_llm.requests == []


def test_the_version_page_shows_the_playground_to_authors_only(client, author, outsider, versions):
    login(client, author)
    page = client.get(reverse("promptreg:version-detail", args=["support-answer", 2])).content.decode()
    assert 'id="playground"' in page and 'name="sample-greeting"' in page
    assert 'value="2" checked' in page and 'value="1" checked' in page  # this version and production
    login(client, outsider)
    page = client.get(reverse("promptreg:version-detail", args=["support-answer", 2])).content.decode()
    assert 'id="playground"' not in page


def test_the_service_runs_an_unsaved_version(fake_llm, versions):
    result = playground_run(version=versions[1], variables={"greeting": "Hey"}, overrides={"temperature": 0})
    assert result.output == "Hey brave new world" and result.version == 2 and result.model == "fake-model"
    assert json.loads(fake_llm.requests[0]["body"])["temperature"] == 0


def test_the_authoring_page_offers_to_run_the_draft(client, author, versions):
    login(client, author)
    page = client.get(reverse("promptreg:version-new", args=["support-answer"])).content.decode()
    assert "Run the draft" in page and '"prompt": "support-answer"' in page
    assert 'name="versions" value="1" checked' in page and 'name="versions" value="2">' in page
    page = client.get(reverse("promptreg:prompt-new")).content.decode()
    assert "Run the draft" in page and 'name="versions"' not in page


def test_the_panel_asks_for_the_variables_of_included_prompts_too(client, author, publish):
    publish(name="shared-tone", body="Be kind to {{ customer }}.")
    label_move(name="shared-tone", label="production", version=1, actor=SERVER, reason="first", override=True)
    for _ in range(9):
        publish(name="support-answer", body="@@@langfusePrompt:name=shared-tone|label=production@@@ Answer {{ q }}")
    login(client, author)
    page = client.get(reverse("promptreg:version-detail", args=["support-answer", 3])).content.decode()
    assert 'name="sample-customer"' in page and 'name="sample-q"' in page
    offered = [n for n in range(1, 10) if f'name="versions" value="{n}"' in page]
    assert offered == [3, 4, 5, 6, 7, 8, 9]  # this version and the six newest others
