"""The fetch is answered before the dashboard's middleware, with the same security headers,
host check, errors, ETag and 304 as any other API answer."""

from __future__ import annotations

import pytest
from django.test import override_settings

from promptreg.models import PRODUCTION
from promptreg.services import label_move
from rollout import middleware
from tests.rollout.conftest import ApiClient

NAME = "billing/refund-extraction"
URL = f"/api/v1/prompts/{NAME}"
SECURITY_HEADERS = ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy")


@pytest.fixture
def live(publish, cli, ungated, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        publish(name=NAME)
        label_move(name=NAME, label=PRODUCTION, version=1, actor=cli, reason="ship")


@pytest.fixture
def reader(api_key_factory):
    return ApiClient(api_key_factory("read")[1])


def skipped_middleware_must_not_run(monkeypatch) -> None:
    def refuse(self, request):
        raise AssertionError("the fetch went through the session middleware")

    from django.contrib.sessions.middleware import SessionMiddleware

    monkeypatch.setattr(SessionMiddleware, "process_request", refuse)


def test_the_fetch_skips_the_dashboard_middleware_and_keeps_the_security_headers(reader, live, monkeypatch):
    other_api_answer = reader.get(f"{URL}/monitor")  # an API route that goes the whole way
    skipped_middleware_must_not_run(monkeypatch)
    response = reader.get(URL)
    assert (response.status_code, response.json()["version"]) == (200, 1)
    for header in SECURITY_HEADERS:
        assert response[header] == other_api_answer[header], header
    assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in response and "Cookie" not in response.get("Vary", "")
    assert response["Content-Length"] == str(len(response.content))  # keep-alive clients need it
    assert reader.get(URL, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_the_fetch_answers_its_errors_as_before(reader, live, monkeypatch):
    skipped_middleware_must_not_run(monkeypatch)
    assert ApiClient(None).get(URL).json()["error"]["code"] == "missing_key"
    assert ApiClient("sk-pr-nope").get(URL).json()["error"]["code"] == "invalid_key"
    assert reader.get("/api/v1/prompts/nope-system").json()["error"]["code"] == "prompt_not_found"
    posted = reader.post(URL)
    assert (posted.status_code, posted.json()["error"]["code"], posted["Allow"]) == (405, "method_not_allowed", "GET")


def test_a_host_not_allowed_is_refused_before_the_fetch(reader, live):
    assert reader.get(URL, HTTP_HOST="evil.example").status_code == 400


@override_settings(HTTPS_ONLY=True, SECURE_SSL_REDIRECT=True)
def test_the_ssl_redirect_still_applies_to_the_fetch(reader, live):
    response = reader.get(URL)
    assert response.status_code == 301 and response["Location"].startswith("https://")


@pytest.mark.parametrize("path", [f"{URL}/versions", f"{URL}/rollback", f"{URL}/monitor", f"{URL}/labels/production"])
def test_write_endpoints_that_look_like_names_are_not_taken_for_fetches(path):
    assert not middleware._SERVED_NAME.fullmatch(path[len(middleware.FETCH_PREFIX) :])
