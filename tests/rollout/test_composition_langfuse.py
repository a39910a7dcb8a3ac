"""Composition through the unmodified `langfuse` SDK against a live promptreg: Langfuse's tags resolve at `get_prompt`
(text and chat), a missing reference is refused at `create_prompt`, and an included prompt's rollback reaches the
dependent's next fetch."""

from __future__ import annotations

import pytest
from langfuse.api import Error

from promptreg.models import PromptType, PromptVersion, ReviewPolicy
from promptreg.services import Actor, rollback
from tests.rollout.test_langfuse_sdk import get, no_tracing, sdk  # noqa: F401 — fixtures

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.timeout(60)]

INCLUDE = "@@@langfusePrompt:name=company-voice|label=production@@@"


@pytest.fixture
def lf(sdk):  # noqa: F811 — the imported fixture
    ReviewPolicy.objects.filter(prompt_type=PromptType.SYSTEM).update(requires_review=False)
    _, client = sdk("write", "deploy")
    client.create_prompt(name="company-voice", prompt="Be brief.", labels=["production"])
    client.create_prompt(name="company-voice", prompt="Be warm, {{customer}}.", labels=["production"])
    return client


def test_get_prompt_resolves_includes_in_text_and_chat_prompts(lf):
    lf.create_prompt(name="support-system", prompt=f"Answer {{{{question}}}}. {INCLUDE}", labels=["production"])
    text = get(lf, "support-system")
    assert text.prompt == "Answer {{question}}. Be warm, {{customer}}."
    assert text.compile(question="Why?", customer="Ann") == "Answer Why?. Be warm, Ann."

    lf.create_prompt(
        name="support-chat",
        type="chat",
        prompt=[{"role": "system", "content": f"Rules: {INCLUDE}"}, {"role": "user", "content": "{{question}}"}],
        labels=["production"],
    )
    chat = get(lf, "support-chat", type="chat")
    assert chat.compile(customer="Ann", question="Hi") == [
        {"role": "system", "content": "Rules: Be warm, Ann."},
        {"role": "user", "content": "Hi"},
    ]
    raw = lf.api.prompts.get("support-system")
    assert raw.resolution_graph["dependencies"] == {
        str(PromptVersion.objects.get(prompt__name="support-system").pk): [
            {
                "id": str(PromptVersion.objects.get(prompt__name="company-voice", number=2).pk),
                "name": "company-voice",
                "version": 2,
            }
        ]
    }


def test_create_prompt_refuses_a_reference_that_does_not_resolve(lf):
    with pytest.raises(Error) as refused:
        lf.create_prompt(name="support-system", prompt="@@@langfusePrompt:name=company-voice|label=staging@@@")
    assert refused.value.status_code == 400
    assert "'company-voice' has no label 'staging'" in refused.value.body["message"]
    assert not PromptVersion.objects.filter(prompt__name="support-system").exists()


def test_a_rollback_of_the_included_prompt_reaches_the_sdk_on_its_next_fetch(lf):
    lf.create_prompt(name="support-system", prompt=f"Hi. {INCLUDE}", labels=["production"])
    assert get(lf, "support-system").prompt == "Hi. Be warm, {{customer}}."
    rollback(name="company-voice", actor=Actor(via="cli"), reason="too warm")
    assert get(lf, "support-system").prompt == "Hi. Be brief."
