"""API-key secrets are never stored in clear: not in the key table, not in its history, nowhere."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from promptreg.models import ApiKey, hash_secret


def all_text_in_database() -> str:
    """Every row of every table of every installed model (history tables included), as text."""
    chunks = []
    with connection.cursor() as cursor:
        for model in apps.get_models(include_auto_created=True):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(model._meta.db_table)}")
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


@pytest.mark.django_db
def test_no_secret_is_stored_in_clear(api_key_factory, client):
    key, secret = api_key_factory("read", "write")
    key.name = "renamed"  # a change, so the history has a second row
    key.save()
    key.revoked_at = timezone.now()
    key.save()
    assert key.history.count() == 3
    dump = all_text_in_database()
    assert key.public_id in dump  # the search does see the key's rows
    token = secret.removeprefix("sk-pr-")
    assert token not in dump and token[:16] not in dump
    assert hash_secret(secret) in dump  # only the hash is there
    assert not hasattr(key.history.first(), "secret_hash")
    assert ApiKey.find(secret) is None  # revoked
