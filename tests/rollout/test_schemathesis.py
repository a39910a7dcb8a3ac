"""Fuzz /api/v1 from its own OpenAPI document: no 5xx, no response that breaks the schema.

Bounded for CI: a fixed number of derandomized cases per operation, no example
database, and a time limit per operation.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from promptreg.models import ApiKey
from promptreg.wsgi import application
from tests.experiments.conftest import fake_llm  # noqa: F401  (POST …/run reaches a provider: the fake)

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def keep_test_connection():
    # The raw WSGI app closes the connection after each request, which would end
    # the test's transaction; Django's own test client disconnects this too.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def admin_secret(db, publish, keep_test_connection, fake_llm):
    publish("support-system", "Hello {{ name }}")
    publish(
        "support-system",
        [{"role": "system", "content": "Hi {{ name }}"}, {"type": "placeholder", "name": "history"}],
        kind="chat",
    )
    return ApiKey.issue(name="fuzz", scopes=["admin"])[1]


@schema.parametrize()
@settings(max_examples=40, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@pytest.mark.timeout(120)
def test_api_conforms_to_its_schema(case, admin_secret):
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_secret}"}, checks=CHECKS)
