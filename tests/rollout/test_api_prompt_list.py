"""`GET /api/v1/prompts`: search, filters, paging, scopes."""

from __future__ import annotations

import pytest
import time_machine

from promptreg.models import Prompt
from promptreg.services import label_move, prompt_retire

pytestmark = pytest.mark.django_db

URL = "/api/v1/prompts"


@pytest.fixture
def catalogue(publish, cli, ungated):
    with time_machine.travel("2026-11-01T10:00:00Z", tick=False):
        publish(
            "billing/refund-extraction",
            "Extract the refund from {{ ticket }}",
            prompt_type="extraction",
            tags=["billing"],
        )
        publish("support-system", "You help {{ name }}", tags=["support", "billing"])
        publish("support-chat", [{"role": "user", "content": "{{ question }}"}], kind="chat", tags=["support"])
        publish("legacy-router", "Route {{ query }}", description="old support router", prompt_type="agent-planning")
    with time_machine.travel("2026-11-02T10:00:00Z", tick=False):
        publish("support-system", "You help {{ name }} politely")
    with time_machine.travel("2026-11-03T10:00:00Z", tick=False):
        label_move(name="support-system", label="production", version=1, actor=cli, reason="first")
        label_move(name="support-system", label="staging", version=2, actor=cli, reason="try")
    prompt_retire(name="legacy-router", actor=cli, reason="replaced")


def names(response) -> list[str]:
    return [row["name"] for row in response.json()["data"]]


def test_lists_active_prompts_by_name_with_labels_versions_and_last_change(api_as, catalogue):
    response = api_as("read").get(URL)
    assert response.status_code == 200
    body = response.json()
    assert names(response) == ["billing/refund-extraction", "support-chat", "support-system"]
    assert body["meta"] == {"page": 1, "limit": 50, "total": 3}
    system = body["data"][2]
    assert system == {
        "name": "support-system",
        "type": "text",
        "prompt_type": "system",
        "tags": ["billing", "support"],
        "labels": {"production": 1, "staging": 2},
        "latest_version": 2,
        "updated_at": "2026-11-03T10:00:00Z",
    }
    assert body["data"][1]["type"] == "chat" and body["data"][1]["labels"] == {}
    assert body["data"][0]["updated_at"] == "2026-11-01T10:00:00Z"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("search=SUPPORT", ["support-chat", "support-system"]),
        ("search=refund", ["billing/refund-extraction"]),
        ("tag=billing", ["billing/refund-extraction", "support-system"]),
        ("type=chat", ["support-chat"]),
        ("type=text", ["billing/refund-extraction", "support-system"]),
        ("type=extraction", ["billing/refund-extraction"]),
        ("label=staging", ["support-system"]),
        ("label=production&tag=support&type=text", ["support-system"]),
        ("search=router", []),  # retired prompts are not listed
    ],
)
def test_filters(api_as, catalogue, query, expected):
    response = api_as("read").get(f"{URL}?{query}")
    assert response.status_code == 200
    assert names(response) == expected
    assert response.json()["meta"]["total"] == len(expected)


def test_pages_in_name_order(api_as, publish, ungated):
    for i in range(7):
        publish(f"prompt-{i}", "Hi {{ x }}")
    client = api_as("read")
    pages = [client.get(f"{URL}?limit=3&page={page}").json() for page in (1, 2, 3, 4)]
    assert [names_ for names_ in ([r["name"] for r in p["data"]] for p in pages)] == [
        ["prompt-0", "prompt-1", "prompt-2"],
        ["prompt-3", "prompt-4", "prompt-5"],
        ["prompt-6"],
        [],
    ]
    assert all(p["meta"]["total"] == 7 and p["meta"]["limit"] == 3 for p in pages)


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "page=0", "type=poem", "page=x"])
def test_bad_paging_or_filter_is_a_400_naming_the_field(api_as, catalogue, query):
    response = api_as("read").get(f"{URL}?{query}")
    assert response.status_code == 400
    field = query.split("=")[0]
    assert field in response.json()["error"]["message"]


def test_needs_a_key(api_as, catalogue, client):
    assert client.get(URL).status_code == 401
    assert api_as("write").get(URL).status_code == 403
    assert api_as("deploy").get(URL).status_code == 200
    assert Prompt.objects.count() == 4


def test_query_count_does_not_grow_with_the_page(api_as, publish, ungated, django_assert_max_num_queries):
    for i in range(30):
        publish(f"prompt-{i}", "Hi {{ x }}", tags=["t"])
    client = api_as("read")
    with django_assert_max_num_queries(8):
        assert len(client.get(f"{URL}?limit=30").json()["data"]) == 30
