"""`manage.py revoke_api_key PUBLIC_ID`: the key is refused by every server process from the next request."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from promptreg.models import ApiKey


class Command(BaseCommand):
    help = "Revoke an API key by its public id (pk-pr-…). Every server refuses it from the next request."

    def add_arguments(self, parser):
        parser.add_argument("public_id", help="The key's public id, as `create_api_key` printed it.")

    def handle(self, *args, public_id: str, **options):
        key = ApiKey.objects.filter(public_id=public_id.strip()).first()
        if key is None:
            raise CommandError(f"No API key with public id '{public_id}'.")
        if key.revoked_at is not None:
            self.stdout.write(f"API key '{key.name}' ({key.public_id}) was already revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC.")
            return
        key.revoked_at = timezone.now()
        key._change_reason = "revoked with manage.py revoke_api_key"
        key.save(update_fields=["revoked_at"])
        self.stdout.write(f"Revoked API key '{key.name}' ({key.public_id}).")
