"""The unmodified `langfuse` SDK against a live promptreg server, with our API keys as its key pair."""

from __future__ import annotations

import pytest
from langfuse import Langfuse
from langfuse.api import AccessDeniedError, Error, NotFoundError, UnauthorizedError

from promptreg.models import (
    PRODUCTION,
    ApiKey,
    Label,
    LabelMove,
    MoveVia,
    Prompt,
    PromptType,
    PromptVersion,
    ReviewPolicy,
)
from promptreg.services import Actor, version_publish

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.timeout(60)]


@pytest.fixture(autouse=True)
def no_tracing(monkeypatch):
    # Nothing may call the internet: no spans, no default cloud host.
    monkeypatch.setenv("LANGFUSE_TRACING_ENABLED", "false")
    monkeypatch.delenv("LANGFUSE_BASE_URL", raising=False)
    monkeypatch.delenv("LANGFUSE_HOST", raising=False)


@pytest.fixture
def sdk(live_server, api_key_factory):
    """A fresh client per call: each key has its own public id, and the SDK keeps one client per public id."""
    clients = []

    def make(*scopes: str, secret: str | None = None):
        key, real_secret = api_key_factory(*scopes, name="-".join(scopes))
        client = Langfuse(
            public_key=key.public_id, secret_key=secret or real_secret, base_url=live_server.url, tracing_enabled=False
        )
        clients.append(client)
        return key, client

    yield make
    for client in clients:
        client.shutdown()


def get(client, name, **kwargs):
    return client.get_prompt(name, cache_ttl_seconds=0, max_retries=0, **kwargs)


def test_text_prompt_round_trip_by_label_and_version(sdk):
    key, lf = sdk("write", "deploy")
    created = lf.create_prompt(
        name="movie-critic",
        prompt="As a {{criticlevel}} critic, do you like {{ movie }}?",
        config={"model": "gpt-4o", "temperature": 0.2},
        labels=["staging"],
        tags=["movies"],
        commit_message="first",
    )
    assert (created.version, created.labels, created.tags) == (1, ["staging", "latest"], ["movies"])
    lf.create_prompt(name="movie-critic", prompt="V2 {{ movie }}", config={})

    staging = get(lf, "movie-critic", label="staging")
    assert staging.version == 1
    assert staging.config == {"model": "gpt-4o", "temperature": 0.2}
    assert staging.commit_message == "first"
    assert staging.compile(criticlevel="expert", movie="Dune") == "As a expert critic, do you like Dune?"
    latest = get(lf, "movie-critic", label="latest")
    assert (latest.version, latest.labels, latest.tags) == (2, ["latest"], ["movies"])
    assert get(lf, "movie-critic", version=1).prompt.startswith("As a {{criticlevel}}")

    versions = PromptVersion.objects.filter(prompt__name="movie-critic").order_by("number")
    assert [(v.number, v.created_by_key_id, v.commit_message) for v in versions] == [
        (1, key.pk, "first"),
        (2, key.pk, "Created via the Langfuse API"),
    ]
    move = LabelMove.objects.get(prompt__name="movie-critic")
    assert (move.label, move.to_version.number, move.via, move.api_key_id, move.is_override) == (
        "staging",
        1,
        MoveVia.API,
        key.pk,
        False,
    )


def test_chat_prompt_with_placeholder_in_a_folder(sdk):
    _, lf = sdk("write", "deploy")
    lf.create_prompt(
        name="team-a/chat-bot",
        type="chat",
        prompt=[
            {"role": "system", "content": "You are a {{persona}}."},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{question}}"},
        ],
        config={"model": "gpt-4o-mini"},
        labels=["staging"],
    )
    prompt = get(lf, "team-a/chat-bot", label="staging", type="chat")
    assert prompt.name == "team-a/chat-bot"
    assert prompt.compile(persona="pirate", question="Where?", history=[{"role": "assistant", "content": "Ahoy"}]) == [
        {"role": "system", "content": "You are a pirate."},
        {"role": "assistant", "content": "Ahoy"},
        {"role": "user", "content": "Where?"},
    ]
    stored = PromptVersion.objects.get(prompt__name="team-a/chat-bot")
    assert stored.kind == "chat" and stored.variables == ["persona", "question", "history"]


def test_production_is_the_default_and_gates_refuse_a_deploy_key(sdk):
    key, lf = sdk("write", "deploy")
    with pytest.raises(Error) as refused:
        lf.create_prompt(name="support-system", prompt="Hi {{ name }}", labels=["production"])
    assert refused.value.status_code == 400
    assert "peer review" in refused.value.body["message"] and refused.value.body["error"] == "GateBlockedError"
    # All or nothing: the version of a refused create is not kept either.
    assert not PromptVersion.objects.filter(prompt__name="support-system").exists()
    assert not LabelMove.objects.exists()

    ReviewPolicy.objects.filter(prompt_type=PromptType.SYSTEM).update(requires_review=False)
    lf.create_prompt(name="support-system", prompt="Hi {{ name }}", labels=["production"])
    assert get(lf, "support-system").compile(name="Ann") == "Hi Ann"
    assert Label.objects.get(prompt__name="support-system", name=PRODUCTION).version.number == 1


def test_gate_override_key_move_is_an_override_in_the_audit_trail(sdk):
    key, lf = sdk("admin")
    ApiKey.objects.filter(pk=key.pk).update(gate_override=True)
    lf.create_prompt(name="support-system", prompt="v1", labels=["production"])
    lf.create_prompt(name="support-system", prompt="v2", labels=["production", "staging"])
    updated = lf.update_prompt(name="support-system", version=1, new_labels=["production"])
    assert (updated.version, updated.labels) == (1, ["production"])
    assert get(lf, "support-system").prompt == "v1"

    moves = list(LabelMove.objects.filter(label=PRODUCTION).order_by("id"))
    assert [(m.from_version and m.from_version.number, m.to_version.number) for m in moves] == [
        (None, 1),
        (1, 2),
        (2, 1),
    ]
    assert all(m.is_override and m.api_key_id == key.pk and m.reason == "set via Langfuse API" for m in moves)
    assert any("peer review" in gate for gate in moves[0].bypassed_gates)


def test_update_prompt_keeps_labels_unique_and_respects_scope(sdk):
    _, lf = sdk("write", "deploy")
    lf.create_prompt(name="faq-rag-query", prompt="v1", labels=["staging"])
    lf.create_prompt(name="faq-rag-query", prompt="v2")
    lf.update_prompt(name="faq-rag-query", version=2, new_labels=["staging", "canary"])
    assert sorted(Label.objects.filter(prompt__name="faq-rag-query").values_list("name", "version__number")) == [
        ("canary", 2),
        ("staging", 2),
    ]
    assert get(lf, "faq-rag-query", version=1).labels == []

    _, writer = sdk("write")
    with pytest.raises(Error) as refused:
        writer.update_prompt(name="faq-rag-query", version=1, new_labels=["staging"])
    assert refused.value.status_code == 400 and "deploy" in refused.value.body["message"]
    assert Label.objects.get(prompt__name="faq-rag-query", name="staging").version.number == 2


def test_errors_map_to_the_sdk_exceptions(sdk):
    version_publish(name="support-system", kind="text", body="Hi", commit_message="seed", actor=Actor(via=MoveVia.CLI))
    _, lf = sdk("read")
    with pytest.raises(NotFoundError):
        get(lf, "support-system")  # no production label yet
    with pytest.raises(NotFoundError):
        get(lf, "no-such-prompt", version=1)
    with pytest.raises(AccessDeniedError):
        lf.create_prompt(name="support-system", prompt="v2")
    _, wrong = sdk("read", secret="sk-pr-wrong")
    with pytest.raises(UnauthorizedError):
        get(wrong, "support-system", label="latest")
    _, writer = sdk("write")
    with pytest.raises(Error) as type_change:
        writer.create_prompt(name="support-system", type="chat", prompt=[{"role": "user", "content": "x"}])
    assert type_change.value.status_code == 400 and "text prompt" in type_change.value.body["message"]
    assert Prompt.objects.get(name="support-system").versions.count() == 1
