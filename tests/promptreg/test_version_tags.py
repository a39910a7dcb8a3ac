"""Per-version tags: set on publish, by the API and on the version page; on record; filterable; never content."""

from __future__ import annotations

import pytest
from django.urls import reverse

from promptreg.audit import AuditFilter, audit_page
from promptreg.models import Prompt, PromptVersion
from promptreg.services import version_tags_set
from tests.promptreg.dashboard_helpers import publish_as
from tests.rollout.conftest import ApiClient

pytestmark = pytest.mark.django_db


def tags_of(number: int, name: str = "support-system") -> list[str]:
    return sorted(PromptVersion.objects.get(prompt__name=name, number=number).tags.values_list("name", flat=True))


@pytest.fixture
def write_api(api_key_factory):
    return ApiClient(api_key_factory("write")[1])


def test_publish_with_version_tags_keeps_them_apart_from_the_prompts_tags(write_api):
    response = write_api.post_json(
        "/api/v1/prompts/support-system/versions",
        {
            "prompt": "Hi {{ name }}",
            "commit_message": "first",
            "tags": ["Support"],
            "version_tags": [" Legal-Approved ", ""],
        },
    )
    assert response.status_code == 201, response.content
    assert tags_of(1) == ["legal-approved"]
    assert list(Prompt.objects.get(name="support-system").tags.values_list("name", flat=True)) == ["support"]


def test_put_replaces_a_versions_tags_without_touching_its_content(write_api, publish):
    version = publish(body="Hi {{ name }}")
    before = (version.content_hash, version.body, version.status)
    url = "/api/v1/prompts/support-system/versions/1/tags"
    response = write_api.put(url, {"tags": ["b-tag", "a-tag", "b-tag"]}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json() == {"name": "support-system", "version": 1, "tags": ["a-tag", "b-tag"]}
    assert write_api.put(url, {"tags": []}, content_type="application/json").json()["tags"] == []
    version.refresh_from_db()
    assert tags_of(1) == [] and (version.content_hash, version.body, version.status) == before


@pytest.mark.parametrize(
    ("url", "body", "status", "code"),
    [
        ("/api/v1/prompts/support-system/versions/1/tags", {"tags": ["x" * 65]}, 400, "invalid_tag"),
        ("/api/v1/prompts/support-system/versions/9/tags", {"tags": ["a"]}, 404, "version_not_found"),
        ("/api/v1/prompts/nothing-here/versions/1/tags", {"tags": ["a"]}, 404, "prompt_not_found"),
        ("/api/v1/prompts/support-system/versions/1/tags", {"tags": "a"}, 400, "invalid"),
    ],
)
def test_bad_tag_requests_change_nothing(write_api, publish, cli, url, body, status, code):
    publish()
    version_tags_set(name="support-system", number=1, tags=["kept"], actor=cli)
    response = write_api.put(url, body, content_type="application/json")
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert tags_of(1) == ["kept"]


def test_tagging_needs_the_write_scope(api_key_factory, publish):
    publish()
    read = ApiClient(api_key_factory("read")[1])
    response = read.put(
        "/api/v1/prompts/support-system/versions/1/tags", {"tags": ["a"]}, content_type="application/json"
    )
    assert response.status_code == 403
    assert tags_of(1) == []


def test_a_folder_named_tags_is_refused_so_the_route_stays_unambiguous(write_api):
    response = write_api.post_json("/api/v1/prompts/team/tags/versions", {"prompt": "x", "commit_message": "m"})
    assert response.status_code in (400, 404)
    assert not Prompt.objects.exists()


def test_list_api_finds_prompts_by_a_versions_tag(api_key_factory, publish, cli):
    publish("support-system")
    publish("billing-router", tags=["billing"])
    version_tags_set(name="support-system", number=1, tags=["legal-approved"], actor=cli)
    read = ApiClient(api_key_factory("read")[1])
    found = read.get("/api/v1/prompts?tag=legal-approved").json()["data"]
    assert [row["name"] for row in found] == ["support-system"]
    assert [row["name"] for row in read.get("/api/v1/prompts?tag=billing").json()["data"]] == ["billing-router"]


def test_author_tags_a_version_on_its_page_and_it_is_on_record(client, author, outsider):
    publish_as(author)
    page_url = reverse("promptreg:version-detail", args=["support-system", 1])
    tags_url = reverse("promptreg:version-tags", args=["support-system", 1])
    client.force_login(author)
    assert "Edit tags" in client.get(page_url).content.decode()
    response = client.post(tags_url, {"tags": "legal-approved, short"})
    assert response.status_code == 302 and response["Location"] == page_url
    assert tags_of(1) == ["legal-approved", "short"]
    page = client.get(page_url).content.decode()
    assert "Tags of v1 saved." in page and '<span class="tag">legal-approved</span>' in page
    prompt_page = client.get(reverse("promptreg:prompt-detail", args=["support-system"])).content.decode()
    assert '<span class="tag">short</span>' in prompt_page
    events, _ = audit_page(AuditFilter(prompt=Prompt.objects.get(name="support-system")), 1)
    tagged = next(e for e in events if e.title == "Tagged v1")
    assert tagged.who == author.username and ("tags", "", "legal-approved, short") in tagged.changes

    client.force_login(outsider)
    assert "Edit tags" not in client.get(page_url).content.decode()
    assert client.post(tags_url, {"tags": "sneaky"}).status_code == 403
    assert tags_of(1) == ["legal-approved", "short"]


def test_prompt_list_filter_matches_version_tags(client, author, cli):
    publish_as(author)
    publish_as(author, name="other-prompt")
    version_tags_set(name="support-system", number=1, tags=["legal-approved"], actor=cli)
    client.force_login(author)
    page = client.get(reverse("promptreg:prompt-list") + "?tag=legal-approved").content.decode()
    assert "support-system" in page and "other-prompt" not in page
