"""Activate and Roll back: confirmation with a required reason, stale protection, roles, and retire/restore."""

from __future__ import annotations

import pytest
from django.urls import reverse

from promptreg.models import PRODUCTION, Label, LabelMove, Prompt, PromptVersion, ReviewPolicy
from tests.promptreg.dashboard_helpers import activate, approved, publish_as


def activate_url(number, name="support-system"):
    return reverse("promptreg:version-activate", args=[name, number])


ROLLBACK = reverse("promptreg:prompt-rollback", args=["support-system"])


def live(name="support-system"):
    return Label.objects.get(prompt__name=name, name=PRODUCTION).version.number


def test_deployer_activates_an_approved_version_with_a_reason(client, author, reviewer, deployer):
    approved(author, reviewer)
    client.force_login(deployer)
    page = client.get(reverse("promptreg:version-detail", args=["support-system", 1])).content.decode()
    assert ">Activate</a>" in page
    dialog = client.get(activate_url(1), headers={"HX-Request": "true"}).content.decode()
    assert dialog.lstrip().startswith('<section class="card narrow-wide confirm">')
    assert "Production moves from <strong>nothing</strong> to <strong>v1</strong>" in dialog
    response = client.post(activate_url(1), {"reason": "approved greeting", "expected_current": ""})
    assert response.status_code == 302
    assert live() == 1
    move = LabelMove.objects.get()
    assert (move.actor, move.reason, move.via) == (deployer, "approved greeting", "button")
    assert "now live in production" in client.get(response["Location"]).content.decode()


def test_activate_requires_a_reason(client, author, reviewer, deployer):
    approved(author, reviewer)
    client.force_login(deployer)
    response = client.post(activate_url(1), {"reason": "  "})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    assert not LabelMove.objects.exists()


def test_activate_refuses_a_version_missing_its_gates(client, author, deployer):
    publish_as(author)
    client.force_login(deployer)
    page = client.get(reverse("promptreg:version-detail", args=["support-system", 1])).content.decode()
    assert ">Activate</a>" not in page
    response = client.post(activate_url(1), {"reason": "try"})
    assert response.status_code == 200 and "cannot take the production label yet" in response.content.decode()
    assert not Label.objects.exists()


def test_admin_may_override_missing_gates_and_it_is_recorded(client, author, admin_user):
    publish_as(author)
    client.force_login(admin_user)
    assert "Override the missing gates" in client.get(activate_url(1)).content.decode()
    client.post(activate_url(1), {"reason": "hotfix", "override": "on"})
    move = LabelMove.objects.get()
    assert move.is_override and move.bypassed_gates


def test_activate_with_a_stale_page_changes_nothing(client, author, reviewer, deployer):
    activate(approved(author, reviewer), deployer)
    approved(author, reviewer, body="v2 {{ name }}")
    approved(author, reviewer, body="v3 {{ name }}")
    client.force_login(deployer)
    activate(PromptVersion.objects.get(number=2), deployer)  # someone else, after the page was opened
    response = client.post(activate_url(3), {"reason": "ship v3", "expected_current": "1"})
    assert "someone else moved it" in response.content.decode()
    assert live() == 2


@pytest.mark.parametrize("role", ["author", "reviewer", "outsider"])
def test_only_deployers_activate_or_roll_back(client, request, author, reviewer, deployer, role):
    activate(approved(author, reviewer), deployer)
    activate(approved(author, reviewer, body="v2 {{ name }}"), deployer)
    client.force_login(request.getfixturevalue(role))
    assert client.get(activate_url(1)).status_code == 403
    assert client.post(activate_url(1), {"reason": "x"}).status_code == 403
    assert client.get(ROLLBACK).status_code == 403
    assert client.post(ROLLBACK, {"reason": "x"}).status_code == 403
    assert live() == 2 and LabelMove.objects.count() == 2


def test_rollback_shows_the_target_first_then_rolls_back(client, author, reviewer, deployer):
    v1 = approved(author, reviewer, commit_message="good one")
    activate(v1, deployer)
    publish_as(author, body="never live {{ name }}")
    v3 = approved(author, reviewer, body="v3 {{ name }}")
    activate(v3, deployer)
    client.force_login(deployer)
    dialog = client.get(ROLLBACK, headers={"HX-Request": "true"}).content.decode()
    assert "from <strong>v3</strong> back to <strong>v1</strong>" in dialog and "good one" in dialog
    assert 'name="expected_current" value="3"' in dialog
    response = client.post(ROLLBACK, {"reason": "answers got worse", "expected_current": "3"}, follow=True)
    assert "went from v3 back to v1" in response.content.decode()
    assert live() == 1
    move = LabelMove.objects.order_by("-id").first()
    assert move.is_rollback and move.reason == "answers got worse" and move.actor == deployer


def test_rollback_needs_a_reason_and_a_fresh_page(client, author, reviewer, deployer):
    activate(approved(author, reviewer), deployer)
    activate(approved(author, reviewer, body="v2 {{ name }}"), deployer)
    client.force_login(deployer)
    assert "This field is required." in client.post(ROLLBACK, {"reason": ""}).content.decode()
    stale = client.post(ROLLBACK, {"reason": "bad", "expected_current": "1"}).content.decode()
    assert "nothing was rolled back" in stale
    assert live() == 2 and LabelMove.objects.count() == 2


def test_rollback_with_nothing_to_return_to(client, author, reviewer, deployer):
    activate(approved(author, reviewer), deployer)
    client.force_login(deployer)
    assert "Roll back" not in client.get(reverse("promptreg:prompt-detail", args=["support-system"])).content.decode()
    assert "no earlier live version" in client.get(ROLLBACK).content.decode()
    response = client.post(ROLLBACK, {"reason": "x", "expected_current": "1"})
    assert "no earlier live version" in response.content.decode()
    assert live() == 1


def test_retire_and_restore(client, author, deployer):
    publish_as(author)
    client.force_login(deployer)
    retire = reverse("promptreg:prompt-retire", args=["support-system"])
    restore = reverse("promptreg:prompt-restore", args=["support-system"])
    assert "reason is required" in client.post(retire, {"reason": ""}, follow=True).content.decode()
    assert not Prompt.objects.get().is_retired
    page = client.post(retire, {"reason": "feature removed"}, follow=True).content.decode()
    assert "is retired" in page and "Restore" in page
    assert Prompt.objects.get().is_retired
    assert b">support-system</a>" not in client.get(reverse("promptreg:prompt-list")).content
    client.post(restore, {"reason": "back in use"})
    assert not Prompt.objects.get().is_retired
    client.force_login(author)
    assert client.post(retire, {"reason": "x"}).status_code == 403
    assert not Prompt.objects.get().is_retired


def test_ungated_types_activate_without_review(client, author, deployer):
    ReviewPolicy.objects.filter(prompt_type="system").update(requires_review=False)
    publish_as(author)
    client.force_login(deployer)
    client.post(activate_url(1), {"reason": "no review needed"})
    assert live() == 1


def test_activate_dialog_repeats_the_breaking_change_warning(client, author, reviewer, deployer):
    activate(approved(author, reviewer), deployer)
    approved(author, reviewer, body="Hello {{ name }} from {{ company }}")
    client.force_login(deployer)
    dialog = client.get(activate_url(2), headers={"HX-Request": "true"}).content.decode()
    assert (
        "<strong>Breaking change:</strong> the variables changed" in dialog and "Added: <code>company</code>" in dialog
    )
    approved(author, reviewer, body="Hello {{ name }}!")  # against production (v1): the same variables
    dialog = client.get(activate_url(3), headers={"HX-Request": "true"}).content.decode()
    assert "Activate v3" in dialog and "Breaking change" not in dialog
