"""Dataset and run pages: forms, uploads, permissions, progress polling, the version panel."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from experiments.evaluation import evaluation_start
from experiments.models import Dataset, EvalRun, PromptEvalSettings, RunState
from experiments.runner import run_execute
from promptreg.models import PolicyChange
from promptreg.services import label_move
from tests.conftest import PASSWORD
from tests.experiments.conftest import SERVER


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_author_creates_a_dataset_in_the_browser(client, author):
    login(client, author)
    response = client.post(
        reverse("experiments:dataset-list"),
        {
            "name": "faq",
            "scorers": '["exact_match", {"name": "contains_any", "keywords": ["refund"]}]',
            "primary_metric": "",
        },
    )
    dataset = Dataset.objects.get(name="faq")
    assert response.status_code == 302 and response["Location"] == reverse(
        "experiments:dataset-detail", args=[dataset.pk]
    )
    assert (
        dataset.scorers == [{"name": "exact_match"}, {"name": "contains_any", "keywords": ["refund"]}]
        and dataset.created_by == author
    )
    page = client.get(reverse("experiments:dataset-list"))
    assert b"faq" in page.content and b"Datasets</a>" in page.content


def test_bad_scorers_re_render_the_form_with_the_reason(client, author):
    login(client, author)
    response = client.post(reverse("experiments:dataset-list"), {"name": "faq", "scorers": '["bleu"]'})
    assert response.status_code == 200 and b"unknown scorer" in response.content
    response = client.post(reverse("experiments:dataset-list"), {"name": "faq", "scorers": "[not json"})
    assert (
        response.status_code == 200
        and b"Scorers: not valid JSON, expecting value on line 1, column 2." in response.content
    )
    assert not Dataset.objects.exists()


def test_outsider_sees_no_buttons_and_gets_403(client, outsider, dataset):
    login(client, outsider)
    page = client.get(reverse("experiments:dataset-detail", args=[dataset.pk]))
    assert page.status_code == 200 and b"Upload CSV" not in page.content and b"Add case" not in page.content
    assert (
        client.post(reverse("experiments:dataset-list"), {"name": "x", "scorers": '["exact_match"]'}).status_code == 403
    )
    upload = SimpleUploadedFile("c.jsonl", b'{"variables": {"q": "x"}}\n')
    assert client.post(reverse("experiments:dataset-upload", args=[dataset.pk]), {"file": upload}).status_code == 403
    case = dataset.active_cases().first()
    assert client.post(reverse("experiments:case-remove", args=[dataset.pk, case.pk])).status_code == 403
    assert dataset.active_cases().count() == 4 and Dataset.objects.count() == 1


def test_upload_lists_every_bad_row_and_imports_nothing(client, author, dataset):
    login(client, author)
    upload = SimpleUploadedFile(
        "c.jsonl", b'{"variables": {"query": "ok"}}\n{oops\n{"variables": {"query": "ok"}, "tags": 1}\n'
    )
    response = client.post(reverse("experiments:dataset-upload", args=[dataset.pk]), {"file": upload})
    assert response.status_code == 200
    text = response.content.decode()
    assert (
        "2 bad rows; nothing was imported." in text
        and "line 2: not valid JSON" in text
        and "line 3: &#x27;tags&#x27; must be a list of text" in text
    )
    assert dataset.active_cases().count() == 4


def test_upload_csv_then_export(client, author, dataset):
    login(client, author)
    upload = SimpleUploadedFile("c.csv", b"query,expected\nWhat is 2+2?,4\n")
    response = client.post(reverse("experiments:dataset-upload", args=[dataset.pk]), {"file": upload})
    assert response.status_code == 302
    assert dataset.active_cases().count() == 5
    export = client.get(reverse("experiments:dataset-export", args=[dataset.pk, "csv"]))
    assert export["Content-Type"].startswith("text/csv") and export.content.decode().endswith("What is 2+2?,4,\n")
    history = client.get(reverse("experiments:dataset-history", args=[dataset.pk]))
    assert b"1 cases imported by alice" in history.content


def test_case_edit_and_remove(client, author, dataset):
    login(client, author)
    case = dataset.active_cases().first()
    url = reverse("experiments:case-edit", args=[dataset.pk, case.pk])
    assert client.post(url, {"variables": '["not an object"]', "expected": ""}).status_code == 200
    assert client.post(url, {"variables": '{"query": "new"}', "expected": "N", "tags": "a, b"}).status_code == 302
    case.refresh_from_db()
    assert (case.variables, case.expected, case.tags) == ({"query": "new"}, "N", ["a", "b"])
    assert client.post(reverse("experiments:case-remove", args=[dataset.pk, case.pk])).status_code == 302
    case.refresh_from_db()
    assert case.removed_at is not None and dataset.active_cases().count() == 3


def test_progress_polls_until_the_run_is_done(client, author, fake_llm, version, dataset):
    login(client, author)
    run = evaluation_start(version=version, dataset=dataset, actor=SERVER)
    page = client.get(reverse("experiments:run-detail", args=[run.pk]))
    assert b'hx-trigger="every 1s"' in page.content and b"Cancel run" in page.content
    fragment = client.get(reverse("experiments:run-progress", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and b"0 of 4 cases" in fragment.content and b"<html" not in fragment.content
    run_execute(run.pk)
    done = client.get(reverse("experiments:run-progress", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert done.status_code == 286 and done["HX-Refresh"] == "true"
    page = client.get(reverse("experiments:run-detail", args=[run.pk]))
    text = page.content.decode()
    assert 'hx-trigger="every 1s"' not in text and "Madrid" in text and "quality_score" in text and " ms" in text


def test_failed_run_page_says_why(client, author, settings, version, dataset):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    settings.LLM_BACKOFF = 0.01
    login(client, author)
    run = evaluation_start(version=version, dataset=dataset, actor=SERVER)
    run_execute(run.pk)
    page = client.get(reverse("experiments:run-detail", args=[run.pk]))
    assert b"The run failed." in page.content and b"could not connect" in page.content


def test_one_click_evaluation_and_the_panel_on_the_version_page(client, author, fake_llm, version, dataset):
    login(client, author)
    page = client.get(reverse("promptreg:version-detail", args=[version.prompt.name, version.number]))
    # Nothing is live yet: "Evaluate" alone; there is no production to compare with.
    assert (
        b'value="alone" class="primary">Evaluate</button>' in page.content
        and b"eval gate: v1 has no finished evaluation" in page.content
    )
    assert b"Evaluate against production" not in page.content
    response = client.post(
        reverse("experiments:version-run", args=[version.prompt.name, version.number]), {"mode": "alone"}
    )
    run = EvalRun.objects.get(version=version)
    assert response.status_code == 302 and response["Location"] == reverse("experiments:run-detail", args=[run.pk])
    run_execute(run.pk)
    page = client.get(reverse("promptreg:version-detail", args=[version.prompt.name, version.number]))
    assert b"The eval gate passes." in page.content


def test_evaluate_against_production_from_the_version_page(client, author, deployer, fake_llm, publish, dataset):
    v1 = publish(name="geo-answer", body="{{ query }}")
    label_move(name="geo-answer", label="production", version=1, actor=SERVER, reason="first", override=True)
    v2 = publish(name="geo-answer", body="Answer: {{ query }}")
    PromptEvalSettings.objects.create(prompt=v1.prompt, dataset=dataset)
    login(client, author)
    page = client.get(reverse("promptreg:version-detail", args=["geo-answer", 2]))
    assert b'value="compare" class="primary">Evaluate against production</button>' in page.content
    response = client.post(reverse("experiments:version-run", args=["geo-answer", 2]), {"mode": "compare"})
    run = EvalRun.objects.get(version=v2)
    assert response.status_code == 302 and run.baseline.version == v1


def test_missing_variables_message_on_one_click(client, author, fake_llm, publish, dataset):
    login(client, author)
    v = publish(name="geo-answer", body="{{ query }} {{ city }}")
    PromptEvalSettings.objects.create(prompt=v.prompt, dataset=dataset)
    response = client.post(reverse("experiments:version-run", args=[v.prompt.name, v.number]), follow=True)
    assert b"cannot fill v1&#x27;s template: case 1 lacks city" in response.content
    assert not EvalRun.objects.exists()


def test_choose_the_prompt_dataset_and_structure_checks(client, author, reviewer, publish, dataset):
    login(client, author)
    v1 = publish(name="geo-answer", body="{{ query }}")
    v2 = publish(name="geo-answer", body="Q: {{ query }} ({{ lang }})")
    # The author alone may not choose what the gate measures: no picker, and the POST is refused.
    page = client.get(reverse("promptreg:prompt-detail", args=["geo-answer"]))
    assert b"Evaluation dataset:</strong> none" in page.content and b"A Reviewer or an Admin chooses it" in page.content
    assert (
        client.post(reverse("experiments:prompt-dataset", args=["geo-answer"]), {"dataset": dataset.pk}).status_code
        == 403
    )
    assert not PromptEvalSettings.objects.exists()
    login(client, reviewer)
    page = client.get(reverse("promptreg:prompt-detail", args=["geo-answer"]))
    assert b'<label for="evaluation-dataset-' in page.content and b">Evaluation dataset</label>" in page.content
    response = client.post(
        reverse("experiments:prompt-dataset", args=[v1.prompt.name]), {"dataset": dataset.pk, "next": "/evaluations/"}
    )
    assert response.status_code == 302 and PromptEvalSettings.objects.get(prompt=v1.prompt).dataset == dataset
    change = PolicyChange.objects.get()
    assert (change.actor, change.area, change.before, change.after) == (
        reviewer,
        "gate_dataset",
        "(none) (alpha 0.05)",
        "capitals (alpha 0.05)",
    )
    audit = client.get(reverse("promptreg:prompt-audit", args=["geo-answer"])).content.decode()
    assert "rita changed the gate dataset: (none) (alpha 0.05) → capitals (alpha 0.05)" in audit and "(button)" in audit
    bad = client.post(reverse("experiments:prompt-dataset", args=["geo-answer"]), {"dataset": "99999"}, follow=True)
    assert (
        b"Evaluation dataset: Select a valid choice." in bad.content
        and PromptEvalSettings.objects.get().dataset == dataset
    )
    login(client, author)
    page = client.get(reverse("experiments:version-structure", args=[v2.prompt.name, 2]) + "?against=1")
    text = page.content.decode()
    assert "4 of 4 cases need a look" in text and "missing substitution: lang" in text
    assert (
        "v2: missing variables: lang"
        in client.get(
            reverse("experiments:version-structure", args=[v1.prompt.name, 1]) + "?against=2"
        ).content.decode()
    )
    publish(name="geo-answer", body="Q: {{ query }}")
    page = client.get(reverse("experiments:version-structure", args=[v1.prompt.name, 3]) + "?against=1")
    text = page.content.decode()
    assert "0 of 4 cases need a look" in text
    assert "+++ v3" in text and "-capital 0 [[answer:Paris]]" in text and "+Q: capital 0 [[answer:Paris]]" in text


def test_outsider_cannot_run_or_cancel(client, outsider, fake_llm, version, dataset):
    login(client, outsider)
    assert (
        client.post(reverse("experiments:version-run", args=[version.prompt.name, version.number])).status_code == 403
    )
    run = evaluation_start(version=version, dataset=dataset, actor=SERVER)
    assert client.post(reverse("experiments:run-cancel", args=[run.pk])).status_code == 403
    run.refresh_from_db()
    assert run.state == RunState.QUEUED and EvalRun.objects.count() == 1
