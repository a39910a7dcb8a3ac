"""`manage.py up`'s demo key: issued once, kept in var/ (0600), printed at every start; `--new-key` rotates it."""

from django.utils import timezone

from promptreg.management.commands.up import DEMO_KEY_FILE, Command
from promptreg.models import ApiKey

URL = "/api/v1/prompts/support-system?label=latest"


def fetch(client, secret: str) -> int:
    return client.get(URL, HTTP_AUTHORIZATION=f"Bearer {secret}").status_code


def test_a_restart_keeps_the_demo_key(client, publish, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    publish()
    first = Command()._demo_key()
    assert (tmp_path / DEMO_KEY_FILE).read_text().strip() == first
    assert (tmp_path / DEMO_KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert Command()._demo_key() == first
    assert fetch(client, first) == 200
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 1


def test_new_key_revokes_the_previous_one_at_once(
    client, publish, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.VAR_DIR = tmp_path
    publish()
    first = Command()._demo_key()
    assert fetch(client, first) == 200
    with django_capture_on_commit_callbacks(execute=True):
        second = Command()._demo_key(rotate=True)
    assert second != first
    assert fetch(client, first) == 401 and fetch(client, second) == 200
    assert (tmp_path / DEMO_KEY_FILE).read_text().strip() == second
    assert (tmp_path / DEMO_KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_a_kept_key_that_was_revoked_is_replaced(client, publish, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    publish()
    first = Command()._demo_key()
    key = ApiKey.find(first)
    key.revoked_at = timezone.now()
    key.save()
    second = Command()._demo_key()
    assert second != first and fetch(client, second) == 200
