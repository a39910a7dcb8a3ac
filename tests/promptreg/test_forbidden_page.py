"""The 403 page says why (the refusal's message), who gives roles, and links home; htmx gets only the sentence."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.urls import reverse

from rollout.api_errors import permission_denied
from tests.conftest import PASSWORD


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)


def test_a_roleless_users_403_page_says_which_role_and_whom_to_ask(client, outsider):
    login(client, outsider)
    response = client.post(reverse("experiments:playground-compare"), {"prompt": "x", "versions": "1"})
    assert response.status_code == 403
    page = response.content.decode()
    assert "Running the playground needs the Author role." in page
    assert "are given by an Admin" in page and "(oscar)" in page
    assert '<a href="/">Go to the prompt list</a>' in page and 'class="topbar"' in page  # the site's own page


def test_htmx_gets_only_the_sentence(client, outsider):
    login(client, outsider)
    response = client.post(reverse("experiments:playground-compare"), {"prompt": "x"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    fragment = response.content.decode()
    assert "Running the playground needs the Author role." in fragment and "<html" not in fragment


def test_a_refusal_without_a_message_still_says_what_to_do(rf, outsider):
    request = rf.get("/somewhere/")
    request.user, request.htmx = outsider, False
    response = permission_denied(request, PermissionDenied())
    assert response.status_code == 403
    assert "Your account does not have the role this needs." in response.content.decode()


def test_the_admins_page_refusal_names_the_role(client, outsider):
    login(client, outsider)
    response = client.get(reverse("experiments:provider"))
    assert response.status_code == 403
    assert "Setting the evaluation provider needs the Admin role." in response.content.decode()
