"""The labels page: each label's version and history, and moving a label through the same service (and gates)."""

from __future__ import annotations

from django.urls import reverse

from promptreg.models import Label, LabelMove
from tests.promptreg.dashboard_helpers import activate, approved, publish_as

LABELS = reverse("promptreg:prompt-labels", args=["support-system"])


def test_deployer_moves_staging_and_sees_its_history(client, author, reviewer, deployer):
    activate(approved(author, reviewer), deployer)
    publish_as(author, body="Hi {{ name }}")
    client.force_login(deployer)
    page = client.get(LABELS).content.decode()
    assert (
        'id="label-production"' in page and "Move a label" in page and '<option value="2" selected>v2</option>' in page
    )
    response = client.post(LABELS, {"label": "staging", "version": "2", "reason": "try the new greeting"})
    assert response.status_code == 302 and response["Location"] == LABELS + "#label-staging"
    assert Label.objects.get(name="staging").version.number == 2
    move = LabelMove.objects.get(label="staging")
    assert (move.actor, move.reason, move.via, move.from_version) == (deployer, "try the new greeting", "button", None)
    client.post(LABELS, {"label": "staging", "version": "1", "reason": "back to v1 for the demo"})
    page = client.get(LABELS).content.decode()
    assert "staging now points at v1 (was v2)." in page
    history = page.split('id="label-staging"')[1].split("</section>")[0]
    assert history.index("back to v1 for the demo") < history.index("try the new greeting")  # newest first
    assert "v2 → v1" in history and "– → v2" in history


def test_production_keeps_its_gates_and_bad_input_moves_nothing(client, author, deployer):
    publish_as(author)  # a draft: not reviewed
    client.force_login(deployer)
    response = client.post(LABELS, {"label": "production", "version": "1", "reason": "ship it"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing moved." in html and "peer review: needs 1 approval" in html
    for data, message in [
        ({"label": "Staging!", "version": "1", "reason": "x"}, "Label names use lowercase letters"),
        ({"label": "staging", "version": "7", "reason": "x"}, "Select a valid choice"),
        ({"label": "staging", "version": "1", "reason": ""}, "This field is required"),
        ({"label": "latest", "version": "1", "reason": "x"}, "&#x27;latest&#x27; is computed"),
    ]:
        html = client.post(LABELS, data).content.decode()
        assert message in html, data
    assert not Label.objects.exists() and not LabelMove.objects.exists()


def test_only_deployers_move_labels(client, author, reviewer):
    publish_as(author)
    for user in (author, reviewer):
        client.force_login(user)
        assert "Deployers move labels." in client.get(LABELS).content.decode()
        assert client.post(LABELS, {"label": "staging", "version": "1", "reason": "x"}).status_code == 403
    assert not Label.objects.exists()
