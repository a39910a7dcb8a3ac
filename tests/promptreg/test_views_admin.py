"""The admin: every registry model is registered, and simple-history's history pages work."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from promptreg.models import ApiKey, Label, LabelMove, Prompt, PromptVersion, Review, ReviewPolicy, Tag
from tests.promptreg.dashboard_helpers import activate, approved

MODELS = [Prompt, PromptVersion, Label, LabelMove, Review, ReviewPolicy, ApiKey, Tag]


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root", "root@example.com", "x")


def test_every_model_has_a_working_admin(client, superuser, author, reviewer, deployer):
    activate(approved(author, reviewer, tags=["support"]), deployer)
    ApiKey.issue(name="ci", scopes=["read"])
    client.force_login(superuser)
    for model in MODELS:
        meta = model._meta
        obj = model.objects.first()
        assert client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")).status_code == 200, (
            meta.model_name
        )
        assert (
            client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])).status_code == 200
        ), meta.model_name


@pytest.mark.parametrize("model", [Prompt, PromptVersion, Label, Review, ReviewPolicy])
def test_simple_history_admin_pages(client, superuser, author, reviewer, deployer, model):
    activate(approved(author, reviewer), deployer)
    client.force_login(superuser)
    obj = model.objects.first()
    if obj.history.first() is None:  # review policies come from a data migration, which writes no history
        obj.save()
    meta = model._meta
    history = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_history", args=[obj.pk]))
    assert history.status_code == 200
    record = obj.history.first()
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_simple_history", args=[obj.pk, record.history_id])
    assert client.get(url).status_code == 200


def test_admin_is_closed_to_non_staff(client, author):
    client.force_login(author)
    response = client.get(reverse("admin:promptreg_prompt_changelist"))
    assert response.status_code == 302 and "login" in response["Location"]
