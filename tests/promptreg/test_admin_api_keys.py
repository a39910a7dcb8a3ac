"""Django admin's "Add API key" issues a real key and shows its secret once."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from promptreg.models import ApiKey, hash_secret

ADD = reverse("admin:promptreg_apikey_add")


@pytest.fixture
def staff(client, db):
    user = User.objects.create_superuser("root", "root@example.com", "x")
    client.force_login(user)
    return user


def add_key(client, name: str, *scopes: str, **fields):
    return client.post(ADD, {"name": name, "scopes": list(scopes), **fields})


def secret_on(response) -> str:
    return re.search(r'<code id="api-key-secret">([^<]+)</code>', response.content.decode())[1]


def test_adding_a_key_issues_a_working_key_and_shows_its_secret_once(client, staff):
    page = client.get(ADD)
    assert page.status_code == 200 and page.context["adminform"].form.initial["owner"] == staff.pk  # the signed-in user
    first = add_key(client, "pipeline", "read", "deploy", owner=staff.pk, gate_override="on")
    assert first.status_code == 200 and "no-store" in first["Cache-Control"]
    secret = secret_on(first)
    key = ApiKey.objects.get(name="pipeline")
    assert key.secret_hash == hash_secret(secret) and key.public_id.startswith("pk-pr-")
    assert (key.scopes, key.created_by, key.owner, key.gate_override) == (["read", "deploy"], staff, staff, True)
    assert key.public_id in first.content.decode()

    second = add_key(client, "another", "read")  # was a 500: two keys with the same empty hash
    assert second.status_code == 200
    other = ApiKey.objects.get(name="another")
    assert other.secret_hash == hash_secret(secret_on(second)) != key.secret_hash

    # The secret works against the API, and no later page shows it again.
    fetch = client.get("/api/v1/prompts/nothing-here", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert fetch.status_code == 404
    for page in (reverse("admin:promptreg_apikey_change", args=[key.pk]), reverse("admin:promptreg_apikey_changelist")):
        assert secret not in client.get(page).content.decode()
    # The change form edits the key as before (revocation included), scopes as checkboxes.
    change = client.get(reverse("admin:promptreg_apikey_change", args=[key.pk])).context["adminform"].form
    assert {"name", "scopes", "owner", "gate_override", "revoked_at"} <= set(
        change.fields
    ) and "secret_hash" not in change.fields


@pytest.mark.parametrize(
    "scopes, fields, error",
    [
        ((), {}, "This field is required."),
        (("superuser",), {}, "Select a valid choice. superuser is not one of the available choices."),
        (("read",), {"gate_override": "on"}, "a gate-override key moves labels: give it the deploy scope"),
    ],
)
def test_a_key_is_checked_as_issue_checks_it_and_nothing_is_saved(client, staff, scopes, fields, error):
    response = add_key(client, "bad", *scopes, **fields)
    assert response.status_code == 200 and error in str(response.context["adminform"].form.errors)
    assert not ApiKey.objects.exists()
