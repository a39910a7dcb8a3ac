"""What runs a prompt (the run API, an evaluation's checks) runs what a fetch serves: its includes resolved."""

from __future__ import annotations

import json

import pytest

from experiments.evaluation import missing_variables
from experiments.models import Case
from experiments.structure import check_case
from promptreg.exceptions import InvalidInput
from promptreg.models import PromptVersion
from promptreg.services import label_move
from tests.experiments.conftest import SERVER

INCLUDE = "@@@langfusePrompt:name=company-voice|label=production@@@"


@pytest.fixture
def dependent(publish):
    publish(name="company-voice", body="Be warm, {{ customer }}.")
    label_move(name="company-voice", label="production", version=1, actor=SERVER, reason="v1", override=True)
    version = publish(name="support-answer", body=f"Answer {{{{ question }}}}. {INCLUDE}")
    label_move(name="support-answer", label="production", version=1, actor=SERVER, reason="v1", override=True)
    return version


def test_the_run_api_sends_the_resolved_text(client, api_key_factory, fake_llm, dependent):
    secret = api_key_factory("write")[1]
    response = client.post(
        "/api/v1/prompts/support-answer/run",
        json.dumps({"variables": {"question": "why?", "customer": "Ann"}}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 200, response.content
    sent = json.loads(fake_llm.requests[0]["body"])
    assert sent["messages"] == [{"role": "system", "content": "Answer why?. Be warm, Ann."}]


def test_evaluation_checks_ask_for_the_included_variables(dependent):
    cases = [
        Case(position=1, variables={"question": "why?"}),
        Case(position=2, variables={"question": "a", "customer": "b"}),
    ]
    assert missing_variables(dependent, cases) == ["case 1 lacks customer"]
    check = check_case(dependent, cases[1])
    assert (check.missing, check.length) == ([], len("Answer a. Be warm, b."))


def test_an_include_that_does_not_resolve_stops_an_evaluation_with_a_clear_error(dependent):
    # Only data from before composition can hold such a tag: publish and label moves refuse it.
    legacy = PromptVersion.objects.create(
        prompt=dependent.prompt, number=2, body="@@@langfusePrompt:name=gone|version=1@@@", commit_message="old"
    )
    with pytest.raises(InvalidInput, match="v2 cannot be evaluated: .*there is no prompt named 'gone'") as caught:
        missing_variables(legacy, [Case(position=1, variables={"question": "x"})])
    assert caught.value.code == "dependency_unresolved"
